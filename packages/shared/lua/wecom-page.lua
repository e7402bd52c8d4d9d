--- KEYS: pull puller pages
--- ARGV: owner from next page leaseMs
-- A pulled page and the cursor after it, written together: the page goes to the pages list (stored as jobs
-- next, then dropped), the cursor moves on. Only the puller holding the lock may write, and only from the
-- cursor it pulled from. Returns 1, or -1 (the lock is lost) or -2 (the cursor moved: another puller's page).
if redis.call('GET', puller) ~= owner then return -1 end
if (redis.call('HGET', pull, 'cursor') or '') ~= from then return -2 end
if page ~= '' then redis.call('RPUSH', pages, page) end
redis.call('HSET', pull, 'cursor', next)
redis.call('PEXPIRE', puller, leaseMs)
return 1
