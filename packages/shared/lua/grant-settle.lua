--- KEYS: grants marks
--- ARGV: op template holder
-- After a notification's send was refused: `refund` gives back the grant `holder` holds (only while it holds
-- it: a clear since then left nothing to give back); `clear` takes every grant of the template away (WeChat
-- answered 43101: the user has none). Returns 1 when something changed, else 0.
--- @include "grants"
if op == 'clear' then
  local had = redis.call('HEXISTS', grants, template)
  clear(grants, marks, template)
  return had
end
if redis.call('ZREM', marks, 't ' .. template .. ' ' .. holder) == 0 then return 0 end
redis.call('HINCRBY', grants, template, 1)
return 1
