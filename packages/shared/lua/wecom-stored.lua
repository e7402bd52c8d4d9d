--- KEYS: puller pages
--- ARGV: owner leaseMs
-- The oldest pulled page is stored as jobs: dropped, while the lock is still the puller's (renewed).
-- Returns the pages left, or -1 when the lock is lost.
if redis.call('GET', puller) ~= owner then return -1 end
redis.call('LPOP', pages)
redis.call('PEXPIRE', puller, leaseMs)
return redis.call('LLEN', pages)
