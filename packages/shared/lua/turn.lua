--- KEYS: window order context
--- ARGV: jobId at count ms trigger now take contextEntry contextNeedle contextMax contextTtl
-- Whether an inbound job may send now (it heads its user's order, or is in none), after applying its own grant
-- (idempotent). Returns {0, head} while it must wait; on its turn {1}, or with take = '1' {1, taken (1/0), left
-- or reason, until, grant's at}: the first send taken in the same trip. On its turn the user's message also
-- joins the AI context (when one is kept), once, in the order the user is answered.
--- @include "window"
--- @include "capped-list"
local tnow = tonumber(now)
grant(window, tonumber(at), tonumber(count), tonumber(ms), trigger, tnow)
local head = redis.call('LINDEX', order, 0)
if head and head ~= jobId and redis.call('LPOS', order, jobId) then return {0, head} end
append_capped(context, contextEntry, contextNeedle, 25, tonumber(contextMax), contextTtl)
if take ~= '1' then return {1} end
local t = take_send(window, tnow)
return {1, t[1], t[2], t[3], t[4]}
