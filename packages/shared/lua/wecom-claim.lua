--- KEYS: pull puller
--- ARGV: owner token tokenAt leaseMs
-- A pull notice arrives at a worker: counted (so a pull running goes round once more), its Token kept if it is
-- the newest, and the puller's lock taken when free (or already `owner`'s: a stalled job run again).
-- Returns {1, requested, cursor, token, tokenAt, first} for the puller, {0, holder} when another one pulls.
redis.call('HINCRBY', pull, 'requested', 1)
if token ~= '' and tonumber(tokenAt) >= (tonumber(redis.call('HGET', pull, 'tokenAt')) or 0) then
  redis.call('HSET', pull, 'token', token, 'tokenAt', tokenAt)
end
local holder = redis.call('GET', puller)
if holder and holder ~= owner then return {0, holder} end
redis.call('SET', puller, owner, 'PX', leaseMs)
local st = redis.call('HMGET', pull, 'requested', 'cursor', 'token', 'tokenAt', 'first')
return {1, st[1], st[2] or '', st[3] or '', st[4] or '0', st[5] or ''}
