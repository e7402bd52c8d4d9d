--- KEYS: token lock
--- ARGV: stored owner ttlMs
-- Stores the token only while the refresh lock is still ours: a fetch that outlived its lease may be older than
-- a token another process stored since, or than that token's deletion after a 40001. Returns 1/0.
if redis.call('GET', lock) ~= owner then return 0 end
redis.call('SET', token, stored, 'PX', ttlMs)
return 1
