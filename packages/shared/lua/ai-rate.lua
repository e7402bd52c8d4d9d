--- KEYS: rate
--- ARGV: windowMs
-- Counts one model call in the user's current window (which starts with its first call). Returns the count.
local n = redis.call('INCR', rate)
if n == 1 then redis.call('PEXPIRE', rate, windowMs) end
return n
