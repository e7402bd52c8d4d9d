import { createHash } from 'node:crypto';
import { type RedisClient, redisKeys } from '@wx-kf/shared/redis';
import { SignatureError } from '@wx-kf/shared/wechat';

// First body wins: store its digest, or accept only the same digest again.
const BIND_SIGNATURE = `
local current = redis.call('GET', KEYS[1])
if not current then
  redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
  return 1
end
if current == ARGV[1] then return 1 end
return 0`;

/** Margin for clocks of several ingress replicas that differ a little. */
const CLOCK_MARGIN_MS = 60_000;
/** How long a binding lasts when the timestamp check is off (a captured signature then never expires). */
const UNBOUNDED_WINDOW_MS = 24 * 3600_000;

type BindingRedis = RedisClient & {
  wxkfBindSignature(key: string, digest: string, expireAtMs: number): Promise<number>;
};

/**
 * A plaintext push's `signature` covers token, timestamp and nonce, never the body. This binds each signature
 * to the first body seen with it, in Redis so every ingress replica agrees, for as long as its timestamp is
 * accepted: WeChat's re-deliveries (the same body) pass, and a captured signature with another body throws
 * SignatureError. Other errors are Redis's.
 */
export function signatureBinder(redis: RedisClient, toleranceSeconds: number) {
  redis.defineCommand('wxkfBindSignature', { numberOfKeys: 1, lua: BIND_SIGNATURE });
  const client = redis as BindingRedis;
  return async (appId: string, signature: string, body: Buffer, timestamp: string | undefined): Promise<void> => {
    const digest = createHash('sha256').update(body).digest('hex');
    const now = Date.now();
    const acceptedUntil =
      toleranceSeconds > 0 ? (Number(timestamp) + toleranceSeconds) * 1000 : now + UNBOUNDED_WINDOW_MS;
    const expireAt = Math.max(acceptedUntil, now) + CLOCK_MARGIN_MS;
    const bound = await client.wxkfBindSignature(redisKeys.signatureBinding(appId, signature), digest, expireAt);
    if (bound !== 1) throw new SignatureError('this signature was already used with another body');
  };
}
