--- KEYS: claim answers
--- ARGV: jobId owner answer ttlMs leaseMs release
-- Stores (or grows) a message's answer, before any of it is sent, only while the claim is still this worker's;
-- renews the claim, or with release = '1' ends it. An empty answer only renews. Returns 1, or 0 when the claim
-- was lost (another worker answers the message now: this one must stop).
if redis.call('GET', claim) ~= jobId .. ' ' .. owner then return 0 end
if answer ~= '' then
  redis.call('HSET', answers, jobId, answer)
  redis.call('PEXPIRE', answers, ttlMs)
end
if release == '1' then redis.call('DEL', claim) else redis.call('PEXPIRE', claim, leaseMs) end
return 1
