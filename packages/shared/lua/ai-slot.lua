--- KEYS: slots
--- ARGV: holder leaseMs max renew
-- Takes one of an account's `max` model-call slots for `holder` until its lease ends, by Redis's clock (expired
-- holders, a crashed worker's, are dropped first); with renew = '1' only extends a slot `holder` still has.
-- Returns 1, or 0 when every slot is taken (or, renewing, the slot has lapsed).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', slots, '-inf', now)
local held = redis.call('ZSCORE', slots, holder)
if held or (renew ~= '1' and redis.call('ZCARD', slots) < tonumber(max)) then
  redis.call('ZADD', slots, now + tonumber(leaseMs), holder)
  redis.call('PEXPIRE', slots, leaseMs)
  return 1
end
return 0
