--- KEYS: window order timeline context handoff answers claim rate grants marks openWindows
--- ARGV: openid
-- Erases everything kept about one user on their slot, at once. Returns {{window, order entries, timeline
-- entries, context entries, handoff, stored answers, model claim, rate counter, templates with grants}, the job
-- ids the order and the timeline named} (the caller removes those jobs: they hold the user's messages).
local ids, seen = {}, {}
local function note(id)
  if type(id) == 'string' and id ~= '' and not seen[id] then seen[id] = true; ids[#ids + 1] = id end
end
for _, id in ipairs(redis.call('LRANGE', order, 0, -1)) do note(id) end
for _, e in ipairs(redis.call('LRANGE', timeline, 0, -1)) do
  local ok, v = pcall(cjson.decode, e)
  if ok and type(v) == 'table' then note(v.j) end
end
local counts = {
  redis.call('EXISTS', window), redis.call('LLEN', order), redis.call('LLEN', timeline), redis.call('LLEN', context),
  redis.call('EXISTS', handoff), redis.call('HLEN', answers), redis.call('EXISTS', claim), redis.call('EXISTS', rate),
  redis.call('HLEN', grants),
}
redis.call('DEL', window, order, timeline, context, handoff, answers, claim, rate, grants, marks)
redis.call('ZREM', openWindows, openid)
return {counts, ids}
