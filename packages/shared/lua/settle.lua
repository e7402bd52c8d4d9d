--- KEYS: window order timeline openWindows context
--- ARGV: effect takenUntil now entry max ttl release at openid contextEntry contextMax contextTtl
-- After a send (or instead of one): applies its effect to the window, records the timeline entry and, with
-- `release`, takes that job out of the user's order. Returns the order's new head ('' when none).
-- A refund applies only to the grant the send was taken from (same end, same action): a grant since then has
-- reset the count already, and adding the send back to it could over-send. A message WeChat accepted joins the
-- user's AI context (when one is kept).
--- @include "capped-list"
if effect == 'refund' then
  local cur = redis.call('HMGET', window, 'until', 'at', 'closed')
  if cur[1] == takenUntil and cur[2] == at and not cur[3] then redis.call('HINCRBY', window, 'left', 1) end
elseif effect == 'exhausted' then
  if redis.call('EXISTS', window) == 1 then redis.call('HSET', window, 'left', '0') end
elseif effect == 'closed' then
  if redis.call('EXISTS', window) == 1 then redis.call('HSET', window, 'left', '0', 'closed', now) end
  redis.call('ZREM', openWindows, openid)
end
append_capped(timeline, entry, '', 4, tonumber(max), ttl)
append_capped(context, contextEntry, '', 25, tonumber(contextMax), contextTtl)
if release == '' then return '' end
redis.call('LREM', order, 1, release)
return redis.call('LINDEX', order, 0) or ''
