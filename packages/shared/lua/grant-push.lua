--- KEYS: grants marks job dedup
--- ARGV: jobId changes fresh now keepMs
-- A subscription push's grant changes (`changes`: lines `<template> add|clear`), applied once per push whoever
-- applies it: the ingress beside its store (fresh = '1': not when the push was stored before) and the worker
-- for the job again. The mark `p <job id>` is the guard: a re-delivery, a retried job or a second ingress
-- replica finds it and changes nothing. Returns 1 when applied, else 0.
--- @include "grants"
if fresh == '1' and redis.call('EXISTS', job, dedup) > 0 then return 0 end
local tnow = tonumber(now)
trim(marks, tnow, keepMs)
if redis.call('ZADD', marks, 'NX', tnow, 'p ' .. jobId) == 0 then return 0 end
redis.call('PEXPIRE', marks, keepMs)
for template, change in string.gmatch(changes, '(%S+) (%a+)') do
  if change == 'add' then redis.call('HINCRBY', grants, template, 1) else clear(grants, marks, template) end
end
return 1
