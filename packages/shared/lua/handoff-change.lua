--- KEYS: state
--- ARGV: op force at now agent reason idleMs closedRecordMs
-- Opens or closes a user's handoff, atomically with the order check. Returns {state before (JSON) or nil,
-- applied (1/0), state after (an applied open only)}. Our own changes (force: rule, handler, operator) keep the
-- events' order mark, so a later kf event still applies; a kf event older than the last one applied does not.
local cur = redis.call('GET', state)
local c = cur and cjson.decode(cur) or nil
local forced, mark, tnow = force == '1', tonumber(at), tonumber(now)
if forced then mark = c and c.at or 0 end
if op == 'open' then
  if c and not forced and c.at > mark then return {cur, 0} end
  if c and not forced and (not c.open) and c.at == mark then return {cur, 0} end
  local who = agent
  if who == '' and c and c.open and c.agent then who = c.agent end
  local s = {open = true, reason = reason, since = (c and c.open) and c.since or tnow, at = math.max(mark, c and c.at or 0)}
  if who ~= '' then s.agent = who end
  local after = cjson.encode(s)
  redis.call('SET', state, after, 'PX', idleMs)
  return {cur or false, 1, after}
end
if not c or not c.open then return {cur or false, 0} end
if not forced and c.at > mark then return {cur, 0} end
local s = {open = false, reason = reason, since = tnow, at = math.max(mark, c.at)}
redis.call('SET', state, cjson.encode(s), 'PX', closedRecordMs)
return {cur, 1}
