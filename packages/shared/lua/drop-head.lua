--- KEYS: order
--- ARGV: head
-- Drops `head` from the user's order if it still is the head (its job is gone). Returns the new head.
if redis.call('LINDEX', order, 0) == head then redis.call('LPOP', order) end
return redis.call('LINDEX', order, 0) or ''
