-- Appends a timeline entry (unless empty, or `needle` is in one of the newest four), keeping `max` entries.
local function append(t, entry, needle, max, ttl)
  if entry == '' or max <= 0 then return end
  if needle ~= '' then
    local recent = redis.call('LRANGE', t, -4, -1)
    for i = 1, #recent do if string.find(recent[i], needle, 1, true) then return end end
  end
  redis.call('RPUSH', t, entry)
  redis.call('LTRIM', t, -max, -1)
  redis.call('PEXPIRE', t, ttl)
end
