--- KEYS: window
--- ARGV: now
-- One send from the user's window: {1, left, until, grant's at} or {0, reason, until, ''}.
--- @include "window"
return take_send(window, tonumber(now))
