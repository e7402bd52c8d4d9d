import { keyspaceOf, type RedisClient } from '../redis/index.js';
import type { Keyspace } from '../redis/keys.js';
import { defineScript, reply } from '../redis/scripts.js';

/**
 * What a user's message was answered with, stored before its first message is sent: a retried job (a send
 * failure, a worker crash, a token error) sends these messages, and the model is never asked twice.
 */
export interface StoredAnswer {
  /** The model's answer, the hand-over replies, the `onError` replies, or nothing (no send was left). */
  kind: 'answer' | 'handover' | 'error' | 'none';
  /** custom/send bodies (without touser), in order; a retry checks them like any job's replies. */
  replies: unknown[];
  /** False while a streamed answer is still arriving; a retry after a crash sends what was stored, and no more. */
  done: boolean;
  /** Why it is not the model's answer (a failure kind, `risky`, `budget`, `rate`, `window`). */
  reason?: string | undefined;
  /** Bytes of the answer that did not fit the sends allowed (not sent; the timeline says so). */
  droppedBytes?: number | undefined;
}

/** The claim's answer: the stored answer, the claim (this worker asks the model), or another worker's claim. */
export type Claim = { kind: 'stored'; answer: StoredAnswer } | { kind: 'claimed' } | { kind: 'busy'; retryMs: number };

/** A claim lives this long unless renewed: a crashed worker's claim frees the message within it. */
export const CLAIM_LEASE_MS = 15_000;
/** A stored answer outlives its job's retries (about 17 minutes) by far; a finished job drops it at once. */
export const ANSWER_TTL_MS = 24 * 3600_000;

const claimScript = defineScript('ai-claim', ['claim', 'answers'], ['jobId', 'owner', 'leaseMs']);
const storeScript = defineScript(
  'ai-store',
  ['claim', 'answers'],
  ['jobId', 'owner', 'answer', 'ttlMs', 'leaseMs', 'release'],
);

/** Reads a stored answer, or undefined for anything that is not one (the key is ours, but a retry must not crash). */
export function parseAnswer(raw: string): StoredAnswer | undefined {
  try {
    const a = JSON.parse(raw) as Partial<StoredAnswer>;
    const kinds: unknown[] = ['answer', 'handover', 'error', 'none'];
    if (!kinds.includes(a.kind) || !Array.isArray(a.replies) || typeof a.done !== 'boolean') return undefined;
    return {
      kind: a.kind as StoredAnswer['kind'],
      replies: a.replies,
      done: a.done,
      ...(typeof a.reason === 'string' ? { reason: a.reason } : {}),
      ...(typeof a.droppedBytes === 'number' ? { droppedBytes: a.droppedBytes } : {}),
    };
  } catch {
    return undefined;
  }
}

/**
 * The model answers of a user's messages and the claim that lets one worker at a time ask the model for one
 * (per user: a user's messages are answered one after the other anyway). Both are per-user keys on the user's
 * slot (`ai-answers`, `ai-claim`), so erasing a user erases them.
 */
export class AiAnswers {
  private readonly keys: Keyspace;

  constructor(
    private readonly redis: RedisClient,
    private readonly options: { leaseMs?: number; ttlMs?: number } = {},
  ) {
    this.keys = keyspaceOf(redis);
    claimScript.register(redis);
    storeScript.register(redis);
  }

  private userKeys(appId: string, openid: string) {
    return { claim: this.keys.aiClaim(appId, openid), answers: this.keys.aiAnswers(appId, openid) };
  }

  /** Claims the message for `owner` (or renews its claim), unless its answer is stored or another worker holds it. */
  async claim(appId: string, openid: string, jobId: string, owner: string): Promise<Claim> {
    const leaseMs = this.options.leaseMs ?? CLAIM_LEASE_MS;
    const [kind, value] = reply.list(
      await claimScript(this.redis, this.userKeys(appId, openid), { jobId, owner, leaseMs }),
    );
    if (kind === 'busy') return { kind: 'busy', retryMs: Math.max(50, reply.int(value)) };
    if (kind === 'stored') {
      const answer = parseAnswer(reply.text(value));
      // Not readable: treated as no answer at all, and overwritten by this worker's.
      if (answer) return { kind: 'stored', answer };
      await this.redis.hdel(this.keys.aiAnswers(appId, openid), jobId);
      return this.claim(appId, openid, jobId, owner);
    }
    return { kind: 'claimed' };
  }

  /**
   * Stores the answer as it is now (before any of it is sent) while `owner` holds the claim; `release` ends the
   * claim. Resolves false when the claim was lost: the caller must stop (another worker answers now).
   */
  async store(
    appId: string,
    openid: string,
    jobId: string,
    owner: string,
    answer: StoredAnswer | undefined,
    release = false,
  ): Promise<boolean> {
    const result = await storeScript(this.redis, this.userKeys(appId, openid), {
      jobId,
      owner,
      answer: answer ? JSON.stringify(answer) : '',
      ttlMs: this.options.ttlMs ?? ANSWER_TTL_MS,
      leaseMs: this.options.leaseMs ?? CLAIM_LEASE_MS,
      release: release ? '1' : '0',
    });
    return reply.int(result) === 1;
  }

  /** Renews `owner`'s claim; false when it was lost. */
  renew(appId: string, openid: string, jobId: string, owner: string): Promise<boolean> {
    return this.store(appId, openid, jobId, owner, undefined);
  }

  /** Ends `owner`'s claim without storing anything (best effort: it expires anyway). */
  async release(appId: string, openid: string, jobId: string, owner: string): Promise<void> {
    await this.store(appId, openid, jobId, owner, undefined, true).catch(() => undefined);
  }

  /** Forgets a message's answer once every message of it was sent (its job completes). */
  async drop(appId: string, openid: string, jobId: string): Promise<void> {
    await this.redis.hdel(this.keys.aiAnswers(appId, openid), jobId);
  }
}
