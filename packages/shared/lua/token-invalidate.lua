--- KEYS: token
--- ARGV: failed
-- Deletes the token only if it still is the one that failed (another process may have replaced it). Returns 1/0.
local cur = redis.call('GET', token)
if cur and cjson.decode(cur).token == failed then return redis.call('DEL', token) end
return 0
