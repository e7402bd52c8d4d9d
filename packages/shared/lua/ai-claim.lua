--- KEYS: claim answers
--- ARGV: jobId owner leaseMs
-- Who answers a user's message with the model. Returns {'busy', ms left} while another worker's claim holds;
-- {'stored', answer} when the message's answer is already stored (a retry sends it, the model is not asked
-- again); else {'claimed'}: the claim is this worker's (new, or renewed) for leaseMs.
local mine = jobId .. ' ' .. owner
local cur = redis.call('GET', claim)
if cur and cur ~= mine then return {'busy', redis.call('PTTL', claim)} end
local stored = redis.call('HGET', answers, jobId)
if stored then return {'stored', stored} end
redis.call('SET', claim, mine, 'PX', leaseMs)
return {'claimed'}
