--- KEYS: grants marks
--- ARGV: template holder now keepMs
-- One grant of `template` for `holder` (a notification job), before its send. Returns {1, left} when taken,
-- {2, left} when `holder` holds one already (a retry, or a job whose grant the admin API took), {0, 0} when the
-- user has none.
--- @include "grants"
local mark = 't ' .. template .. ' ' .. holder
local tnow = tonumber(now)
trim(marks, tnow, keepMs)
local left = tonumber(redis.call('HGET', grants, template) or '0')
if redis.call('ZSCORE', marks, mark) then return {2, left} end
if left <= 0 then return {0, 0} end
if left == 1 then redis.call('HDEL', grants, template) else redis.call('HINCRBY', grants, template, -1) end
redis.call('ZADD', marks, tnow, mark)
redis.call('PEXPIRE', marks, keepMs)
return {1, left - 1}
