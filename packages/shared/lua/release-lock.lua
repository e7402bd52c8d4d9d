--- KEYS: lock
--- ARGV: owner
-- Deletes a lock (or a claim) only while it still holds `owner`'s value. Returns 1/0.
if redis.call('GET', lock) == owner then return redis.call('DEL', lock) end
return 0
