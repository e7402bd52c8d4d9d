--- KEYS: pull puller
--- ARGV: owner seen leaseMs
-- The puller has emptied WeCom's queue as of `seen` notices. If no notice came since, the lock is released
-- ({0}); else the pull goes round once more with the state as it is now ({1, requested, cursor, token, tokenAt, first}).
-- {-1} when the lock is lost.
if redis.call('GET', puller) ~= owner then return {-1} end
local st = redis.call('HMGET', pull, 'requested', 'cursor', 'token', 'tokenAt', 'first')
if (st[1] or '0') == seen then
  redis.call('DEL', puller)
  return {0}
end
redis.call('PEXPIRE', puller, leaseMs)
return {1, st[1], st[2] or '', st[3] or '', st[4] or '0', st[5] or ''}
