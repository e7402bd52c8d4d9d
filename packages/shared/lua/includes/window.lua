-- The send window ledger's shared functions (a user's window is a hash: until, left, at, trigger, closed).
local function n(x) return string.format('%d', x) end

-- A grant resets, never adds: the sends left become the larger of what is left and what the action allows, the
-- end the later of both (WeChat: 条数不累加 … 更新为最大值 … 最长有效时间). An action at or before the last one
-- applied changes nothing, so a grant written twice (ingress, then worker) counts once. Returns the new end, or 0.
-- An action dated more than 5 minutes past our clock grants nothing: no genuine push is, and one dated years ahead
-- would otherwise hold the window's mark there, so the user's real messages could never grant again.
local function grant(w, at, count, ms, trigger, now)
  if count <= 0 or at > now + 300000 then return 0 end
  local cur = redis.call('HMGET', w, 'until', 'left', 'at', 'trigger', 'closed')
  if at <= (tonumber(cur[3]) or 0) then return 0 end
  local untilNew = at + ms
  if untilNew <= now then return 0 end
  local left = count
  local cuntil = tonumber(cur[1]) or 0
  if cuntil > now and not cur[5] then
    if cuntil > untilNew then untilNew = cuntil; trigger = cur[4] end
    local cleft = tonumber(cur[2]) or 0
    if cleft > left then left = cleft end
  end
  redis.call('HDEL', w, 'closed')
  redis.call('HSET', w, 'until', n(untilNew), 'left', n(left), 'at', n(at), 'trigger', trigger)
  redis.call('PEXPIREAT', w, n(untilNew))
  return untilNew
end

-- One send from the window: {1, left, until, grant's at}, or {0, 'closed' | 'exhausted', until, ''}.
local function take_send(w, now)
  local cur = redis.call('HMGET', w, 'until', 'left', 'closed', 'at')
  local u = tonumber(cur[1])
  if not u then return {0, 'closed', '0', ''} end
  if cur[3] then return {0, 'closed', cur[3], ''} end
  if u <= now then return {0, 'closed', cur[1], ''} end
  local left = tonumber(cur[2]) or 0
  if left <= 0 then return {0, 'exhausted', cur[1], ''} end
  redis.call('HINCRBY', w, 'left', -1)
  return {1, left - 1, cur[1], cur[4] or '0'}
end
