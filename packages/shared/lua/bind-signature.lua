--- KEYS: binding
--- ARGV: digest expireAtMs
-- The first request with a signature wins: store its digest, or accept only the same digest again. Returns 1/0.
local current = redis.call('GET', binding)
if not current then
  redis.call('SET', binding, digest, 'PXAT', expireAtMs)
  return 1
end
if current == digest then return 1 end
return 0
