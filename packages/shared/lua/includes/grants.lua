-- The grant ledger's shared functions (a user's grants: a hash template id → grants left; their marks: a sorted
-- set of what already changed them, scored by when, kept `keepMs`).

-- Drops marks older than keepMs (far beyond a push's re-deliveries and a job's retries).
local function trim(m, now, keepMs)
  redis.call('ZREMRANGEBYSCORE', m, '-inf', now - tonumber(keepMs))
end

-- Takes every grant of a template away, and the grants notification jobs hold of it: none of them may be given back.
local function clear(g, m, template)
  redis.call('HDEL', g, template)
  local prefix = 't ' .. template .. ' '
  for _, mark in ipairs(redis.call('ZRANGE', m, 0, -1)) do
    if string.sub(mark, 1, #prefix) == prefix then redis.call('ZREM', m, mark) end
  end
end
