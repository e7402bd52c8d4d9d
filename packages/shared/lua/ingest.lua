--- KEYS: window order timeline openWindows job dedup handoff
--- ARGV: at count ms trigger now jobId entry needle max ttl orderTtl openid handoffIdleMs
-- A push as the ingress stores it, sent just before the job's add on the user's slot. Returns
-- {granted end or 0, seen (the job or its de-duplication key exists), the handoff state or nil}.
-- A push seen before changes nothing: no grant, no order or timeline entry, no handoff renewal (only a read).
--- @include "window"
--- @include "capped-list"
local seen = redis.call('EXISTS', job, dedup)
local state = false
if seen > 0 then
  if handoffIdleMs ~= '0' then state = redis.call('GET', handoff) end
  return {0, seen, state}
end
if handoffIdleMs ~= '0' then state = redis.call('GETEX', handoff, 'PX', handoffIdleMs) end
local granted = grant(window, tonumber(at), tonumber(count), tonumber(ms), trigger, tonumber(now))
if granted > 0 then redis.call('ZADD', openWindows, 'GT', granted, openid) end
-- A delivery whose first try was not stored (503) may have written its entry: it is among the newest (a
-- bounded look, so a user with a long backlog costs no more per push).
if not redis.call('LPOS', order, jobId, 'RANK', -1, 'MAXLEN', 64) then redis.call('RPUSH', order, jobId) end
redis.call('PEXPIRE', order, orderTtl)
append_capped(timeline, entry, needle, 4, tonumber(max), ttl)
return {granted, seen, state}
