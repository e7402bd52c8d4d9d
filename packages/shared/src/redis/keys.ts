/**
 * Every Redis key and pub/sub channel wx-kf uses, and nowhere else: the layout lives in this one file.
 *
 * The store is split into `Keyspace.shards` shards. Each shard's queues and keys share one hash tag, so on a
 * Redis Cluster a shard sits in one slot (BullMQ's scripts and the token lock touch several keys at once,
 * which a cluster allows only within one slot) and the shards spread over the primaries:
 * - one shard (a single Redis, Sentinel; the default there): the tag is `{wx-kf}`, exactly the layout of
 *   every release before sharding, so existing data stays where it is;
 * - N shards: the tags are `{wx-kf:0}` … `{wx-kf:N-1}`.
 * A push and every key about its user (per-user order and state) live on the shard of (account, user), so a
 * hot account spreads over all shards while one user stays in one slot; an account's own keys (token, lock,
 * pause, media, signature bindings, idempotency markers) live on the shard of the account.
 */
export const KEY_PREFIX = '{wx-kf}';

/** BullMQ's `prefix` for every queue of a one-shard layout: a queue's keys are `{wx-kf}:<queue>:…`. */
export const QUEUE_PREFIX = KEY_PREFIX;
/** Stored pushes; each job plans and sends its message's replies. */
export const INBOUND_QUEUE = 'inbound';
/** Replies waiting for a retry, and messages from the send API. */
export const OUTBOUND_QUEUE = 'outbound';
export const QUEUE_NAMES = [INBOUND_QUEUE, OUTBOUND_QUEUE] as const;

/** Most shards a layout may have (a cluster has 16 384 slots; more shards than primaries buys nothing). */
export const MAX_SHARDS = 1024;

/** SCAN pattern matching the pause key of every account on every shard (see `pausedAppId`). */
export const PAUSED_PATTERN = '{wx-kf*}:paused:*';

/** The AppID of a pause key found by PAUSED_PATTERN, or undefined for any other key. */
export function pausedAppId(key: string): string | undefined {
  return /^\{wx-kf(?::\d+)?\}:paused:(.+)$/.exec(key)?.[1];
}

/** Channel: every token store or invalidation is announced here (the message is the AppID); not slotted. */
export const TOKEN_EVENTS = `${KEY_PREFIX}:token-events`;

// FNV-1a (32 bit): cheap, stable across processes and versions, and spreads short ids evenly.
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * One deployment's key layout: its shard count and every key and queue prefix named from it. Built from the
 * configuration (REDIS_SHARDS) by the Redis factory and carried by each connection it makes (`keyspaceOf`), so
 * two layouts can live in one process and nothing depends on import order. Every process of a deployment must
 * use the same count, and it must not change while jobs are stored (see docs/operating.md).
 */
export class Keyspace {
  /** The one-shard layout: a single Redis or Sentinel unless REDIS_SHARDS says otherwise. */
  static readonly SINGLE = new Keyspace(1);

  constructor(readonly shards = 1) {
    if (!Number.isInteger(shards) || shards < 1 || shards > MAX_SHARDS) {
      throw new RangeError(`shard count must be 1 to ${MAX_SHARDS}`);
    }
  }

  /** Every shard index, 0 … shards-1. */
  allShards(): number[] {
    return Array.from({ length: this.shards }, (_, i) => i);
  }

  /** The hash tag of shard `i`: `{wx-kf}` in a one-shard layout (the keys of every earlier release), else `{wx-kf:i}`. */
  shardTag(i: number): string {
    return this.shards === 1 ? KEY_PREFIX : `{wx-kf:${i}}`;
  }

  /** BullMQ's `prefix` for the queues of shard `i`. */
  queuePrefix(i: number): string {
    return this.shardTag(i);
  }

  /** The shard of one user of one account: their pushes, jobs and per-user keys. */
  userShard(appId: string, openid: string): number {
    return this.shards === 1 ? 0 : fnv1a(`${appId}\n${openid}`) % this.shards;
  }

  /** The shard of an account's own keys (token, lock, pause, media, idempotency, signature bindings). */
  accountShard(appId: string): number {
    return this.shards === 1 ? 0 : fnv1a(appId) % this.shards;
  }

  /**
   * The hash tag of every key about one user of one account (send window, order, handoff, timeline): a Lua script
   * may touch several of them, and the user's queue jobs, at once, so they share the slot of the user's shard.
   */
  userTag(appId: string, openid: string): string {
    return this.shardTag(this.userShard(appId, openid));
  }

  /** The hash tag of an account's own keys. */
  accountTag(appId: string): string {
    return this.shardTag(this.accountShard(appId));
  }

  /** BullMQ's de-duplication key for an inbound job id on its shard (present while a delivery is remembered). */
  inboundDedup(shard: number, jobId: string): string {
    return `${this.queuePrefix(shard)}:${INBOUND_QUEUE}:de:${jobId}`;
  }

  /** BullMQ's hash of an inbound job on its shard. */
  inboundJob(shard: number, jobId: string): string {
    return `${this.queuePrefix(shard)}:${INBOUND_QUEUE}:${jobId}`;
  }

  /** The request kind and body digest a `signature` is bound to. */
  signatureBinding(appId: string, signature: string): string {
    return `${this.accountTag(appId)}:sig:${appId}:${signature}`;
  }

  /** The account's access_token (JSON: token, expiresAt). */
  token(appId: string): string {
    return `${this.accountTag(appId)}:token:${appId}`;
  }

  /** The account's token refresh lock. */
  tokenLock(appId: string): string {
    return `${this.accountTag(appId)}:lock:${appId}`;
  }

  /** The account's cool-down after WeChat refused a token request. */
  tokenCooldown(appId: string): string {
    return `${this.accountTag(appId)}:cooldown:${appId}`;
  }

  /** A media_id uploaded for a file (by content hash), reused while WeChat keeps it. */
  media(appId: string, type: string, hash: string): string {
    return `${this.accountTag(appId)}:media:${appId}:${type}:${hash}`;
  }

  /** While present, the account's sends wait (45009 quota, or an operator's pause). */
  paused(appId: string): string {
    return `${this.accountTag(appId)}:paused:${appId}`;
  }

  /** The send API's idempotency marker for (account, sha256 of the Idempotency-Key). */
  idempotency(appId: string, keyDigest: string): string {
    return `${this.accountTag(appId)}:idempotency:${appId}:${keyDigest}`;
  }

  /** A user's send window (hash: until, left, at, trigger, closed); it expires when the window closes. */
  sendWindow(appId: string, openid: string): string {
    return `${this.userTag(appId, openid)}:window:${appId}:${openid}`;
  }

  /** A user's inbound job ids in arrival order: only the head's replies may go out (invariant 10). */
  userOrder(appId: string, openid: string): string {
    return `${this.userTag(appId, openid)}:order:${appId}:${openid}`;
  }

  /** A user's timeline (JSON entries, newest last), capped in length and age. */
  timeline(appId: string, openid: string): string {
    return `${this.userTag(appId, openid)}:timeline:${appId}:${openid}`;
  }

  /**
   * A user's subscribe-message grants (hash: template id → grants left), beside their window: one per `accept`
   * in a pop-up, used by a send WeChat accepts. No expiry: WeChat's one-time grants do not expire either.
   */
  grants(appId: string, openid: string): string {
    return `${this.userTag(appId, openid)}:grants:${appId}:${openid}`;
  }

  /**
   * What already changed a user's grants, so nothing counts twice (sorted set, scored by when): `p <job id>` for a
   * subscription push applied (the ingress and the worker both try), `t <template> <job id>` for a grant a
   * notification job holds (its retries hold the same one).
   */
  grantMarks(appId: string, openid: string): string {
    return `${this.userTag(appId, openid)}:grant-marks:${appId}:${openid}`;
  }

  /** Users of an account with a send window (score: when it ends), read by the open-windows gauge. */
  openWindows(appId: string, shard: number): string {
    return `${this.shardTag(shard)}:windows:${appId}`;
  }

  /** A user's handoff to a human agent (JSON HandoffState); expires after the idle timeout. */
  handoff(appId: string, openid: string): string {
    return `${this.userTag(appId, openid)}:handoff:${appId}:${openid}`;
  }

  /** The users of an account with a handoff opened (score: when), so idle expiries are noticed and counted. */
  handoffIndex(appId: string): string {
    return `${this.accountTag(appId)}:handoffs:${appId}`;
  }

  /**
   * Handoffs the queue CLI opened or closed (hash: `<change> <reason>` → count): its process ends before any
   * scrape, so the admin listener adds these to `wxkf_handoffs_total`.
   */
  handoffChanges(appId: string): string {
    return `${this.accountTag(appId)}:handoff-changes:${appId}`;
  }

  /** What the model sees of a user's conversation (JSON entries, newest last), capped in length and age. */
  aiContext(appId: string, openid: string): string {
    return `${this.userTag(appId, openid)}:ai-context:${appId}:${openid}`;
  }

  /** A user's model answers not yet fully sent (hash: inbound job id → the answer's messages), stored before a send. */
  aiAnswers(appId: string, openid: string): string {
    return `${this.userTag(appId, openid)}:ai-answers:${appId}:${openid}`;
  }

  /** The claim of the one worker calling the model for a user's message (`<job id> <owner>`, with a lease). */
  aiClaim(appId: string, openid: string): string {
    return `${this.userTag(appId, openid)}:ai-claim:${appId}:${openid}`;
  }

  /** A user's model calls in the current hour (the per-user rate). */
  aiUserRate(appId: string, openid: string): string {
    return `${this.userTag(appId, openid)}:ai-rate:${appId}:${openid}`;
  }

  /** The account's model calls in flight across workers (sorted set: holder → lease end), the semaphore. */
  aiSlots(appId: string): string {
    return `${this.accountTag(appId)}:ai-slots:${appId}`;
  }

  /** Tokens the account's model calls used on one UTC day (`YYYY-MM-DD`), against its daily budget. */
  aiTokens(appId: string, day: string): string {
    return `${this.accountTag(appId)}:ai-tokens:${appId}:${day}`;
  }

  /**
   * A WeCom open_kfid's pull (hash: `cursor`, `requested` = notices counted, `token` and `tokenAt` = the newest
   * callback Token): on the shard of its notices, which the ingress stores as if from a user named by the
   * open_kfid. No expiry: the cursor is kept like the queues.
   */
  wecomPull(corpId: string, openKfId: string): string {
    return `${this.userTag(corpId, openKfId)}:wecom-pull:${corpId}:${openKfId}`;
  }

  /** The one puller of an open_kfid (its job id, with a lease renewed per page). */
  wecomPuller(corpId: string, openKfId: string): string {
    return `${this.userTag(corpId, openKfId)}:wecom-puller:${corpId}:${openKfId}`;
  }

  /**
   * The open_kfids of a corp that a notice has named (a set): the catch-up pull (WECOM_CATCHUP_SECONDS) pulls each
   * of them now and then, whether or not a callback came.
   */
  wecomKfs(corpId: string): string {
    return `${this.accountTag(corpId)}:wecom-kfs:${corpId}`;
  }

  /** Pages pulled and not yet stored as jobs (JSON, oldest first), written with the cursor that follows them. */
  wecomPages(corpId: string, openKfId: string): string {
    return `${this.userTag(corpId, openKfId)}:wecom-pages:${corpId}:${openKfId}`;
  }
}
