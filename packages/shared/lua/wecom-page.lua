--- KEYS: pull puller pages
--- ARGV: owner from next page first last leaseMs
-- A pulled page and the cursor after it, written together: the page goes to the pages list (stored as jobs
-- next, then dropped), the cursor moves on. Only the puller holding the lock may write, and only from the
-- cursor it pulled from. A first pull (from no cursor) is marked in `first` until its last page, so a pull that
-- takes it over after a crash still records its old messages as history. Returns 1, or -1 (the lock is lost) or
-- -2 (the cursor moved: an operator's reset).
if redis.call('GET', puller) ~= owner then return -1 end
if (redis.call('HGET', pull, 'cursor') or '') ~= from then return -2 end
if page ~= '' then redis.call('RPUSH', pages, page) end
redis.call('HSET', pull, 'cursor', next)
if last == '1' then
  redis.call('HDEL', pull, 'first')
elseif first == '1' then
  redis.call('HSET', pull, 'first', '1')
end
redis.call('PEXPIRE', puller, leaseMs)
return 1
