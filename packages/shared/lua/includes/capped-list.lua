-- Appends an entry to a capped list (the timeline, the AI context): nothing for an empty entry, nor when `needle`
-- is in one of the newest `lookback` entries (a re-delivery's or a retried job's entry is kept once); keeps the
-- newest `max` entries; the list expires `ttl` ms after its last entry.
local function append_capped(list, entry, needle, lookback, max, ttl)
  if entry == '' or max <= 0 then return end
  if needle ~= '' then
    local recent = redis.call('LRANGE', list, -lookback, -1)
    for i = 1, #recent do if string.find(recent[i], needle, 1, true) then return end end
  end
  redis.call('RPUSH', list, entry)
  redis.call('LTRIM', list, -max, -1)
  redis.call('PEXPIRE', list, ttl)
end
