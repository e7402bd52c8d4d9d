-- Appends an AI context entry (unless empty, or `needle` is in one of the newest 25: a retried job's message is
-- kept once), keeping `max` entries; the list expires `ttl` ms after its last entry.
local function remember(c, entry, needle, max, ttl)
  if entry == '' or max <= 0 then return end
  if needle ~= '' then
    local recent = redis.call('LRANGE', c, -25, -1)
    for i = 1, #recent do if string.find(recent[i], needle, 1, true) then return end end
  end
  redis.call('RPUSH', c, entry)
  redis.call('LTRIM', c, -max, -1)
  redis.call('PEXPIRE', c, ttl)
end
