--- KEYS: puller pages
--- ARGV: owner page leaseMs
-- A pulled page is stored as jobs: dropped if it is still the oldest (a job run twice at once stores it twice,
-- idempotently, and drops it once), while the lock is still the puller's (renewed).
-- Returns the pages left, or -1 when the lock is lost.
if redis.call('GET', puller) ~= owner then return -1 end
if redis.call('LINDEX', pages, 0) == page then redis.call('LPOP', pages) end
redis.call('PEXPIRE', puller, leaseMs)
return redis.call('LLEN', pages)
