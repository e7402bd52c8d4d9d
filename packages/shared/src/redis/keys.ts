/**
 * Every Redis key and pub/sub channel wx-kf uses, and nowhere else: the layout a move to Redis Cluster changes
 * in one place. Today every name shares the hash tag `{wx-kf}`, so a cluster keeps them on one slot (BullMQ's
 * scripts and the token lock touch several keys at once, which a cluster allows only within one slot).
 */
export const KEY_PREFIX = '{wx-kf}';

/** BullMQ's `prefix` for every queue: a queue's keys are `{wx-kf}:<queue>:…`. */
export const QUEUE_PREFIX = KEY_PREFIX;
/** Stored pushes; each job plans and sends its message's replies. */
export const INBOUND_QUEUE = 'inbound';
/** Replies waiting for a retry, and messages from the send API. */
export const OUTBOUND_QUEUE = 'outbound';
export const QUEUE_NAMES = [INBOUND_QUEUE, OUTBOUND_QUEUE] as const;

/**
 * The hash tag of every key about one user of one account (send window, order, handoff, timeline): a Lua script
 * may touch several of them at once, so they must share a slot on a cluster. One tag for now; sharding changes
 * it here.
 */
export function userTag(_appId: string, _openid: string): string {
  return KEY_PREFIX;
}

export const redisKeys = {
  /** BullMQ's de-duplication key for an inbound job id (present while a delivery is remembered). */
  inboundDedup: (jobId: string) => `${QUEUE_PREFIX}:${INBOUND_QUEUE}:de:${jobId}`,
  /** The body digest a plaintext push's signature is bound to. */
  signatureBinding: (appId: string, signature: string) => `${KEY_PREFIX}:sig:${appId}:${signature}`,
  /** The account's access_token (JSON: token, expiresAt), its refresh lock and its cool-down after a refusal. */
  token: (appId: string) => `${KEY_PREFIX}:token:${appId}`,
  tokenLock: (appId: string) => `${KEY_PREFIX}:lock:${appId}`,
  tokenCooldown: (appId: string) => `${KEY_PREFIX}:cooldown:${appId}`,
  /** Channel: every token store or invalidation is announced here (the message is the AppID). */
  tokenEvents: `${KEY_PREFIX}:token-events`,
  /** A media_id uploaded for a file (by content hash), reused while WeChat keeps it. */
  media: (appId: string, type: string, hash: string) => `${KEY_PREFIX}:media:${appId}:${type}:${hash}`,
  /** While present, the account's sends wait (45009 quota, or an operator's pause). */
  paused: (appId: string) => `${KEY_PREFIX}:paused:${appId}`,
  /** The send API's idempotency marker for (account, sha256 of the Idempotency-Key). */
  idempotency: (appId: string, keyDigest: string) => `${KEY_PREFIX}:idempotency:${appId}:${keyDigest}`,
  /** A user's send window (hash: until, left, at, trigger, closed); it expires when the window closes. */
  sendWindow: (appId: string, openid: string) => `${userTag(appId, openid)}:window:${appId}:${openid}`,
  /** A user's inbound job ids in arrival order: only the head's replies may go out (invariant 10). */
  userOrder: (appId: string, openid: string) => `${userTag(appId, openid)}:order:${appId}:${openid}`,
  /** A user's timeline (JSON entries, newest last), capped in length and age. */
  timeline: (appId: string, openid: string) => `${userTag(appId, openid)}:timeline:${appId}:${openid}`,
  /** Users of an account with a send window (score: when it ends), read by the open-windows gauge. */
  openWindows: (appId: string) => `${KEY_PREFIX}:windows:${appId}`,
  /** A user's handoff to a human agent (JSON HandoffState); expires after the idle timeout. */
  handoff: (appId: string, openid: string) => `${userTag(appId, openid)}:handoff:${appId}:${openid}`,
  /** The users of an account with a handoff opened (score: when), so idle expiries are noticed and counted. */
  handoffIndex: (appId: string) => `${KEY_PREFIX}:handoffs:${appId}`,
} as const;
