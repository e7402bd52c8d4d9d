import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Keyspace, type RedisClient, releaseLockScript } from '@wx-kf/shared/redis';
import { sha256 } from './digest.js';
import { IdempotencyConflict, IdempotencyPending } from './refusal.js';

/** How long an Idempotency-Key keeps answering with its first job (WeChat's send window is 48 h at most). */
export const IDEMPOTENCY_TTL_MS = 24 * 3600_000;
/**
 * How long a claimed key stays pending without its job, far above a request: after a crash between the claim and
 * the marker, the retry claims again and adds the same job id, which BullMQ does not add twice.
 */
export const IDEMPOTENCY_PENDING_MS = 60_000;
/** How long a request waits for the job of a concurrent one with the same key and body before answering 409. */
export const IDEMPOTENCY_WAIT_MS = 2_000;
/** The marker of a claimed key whose job is not added yet: `pending <digest> <request id>` (job ids start with `api-`). */
const PENDING = 'pending';

/** A key this request holds: record its job once queued; release it otherwise (a refusal, a failed add). */
export interface KeyClaim {
  /** Keeps answering with `jobId` for IDEMPOTENCY_TTL_MS; the claim is then no longer released. */
  record(jobId: string): Promise<void>;
  /** Frees the key for a retry, if this request still holds it; nothing once recorded. */
  release(): Promise<void>;
}

/**
 * The send API's Idempotency-Keys: a key is claimed (SET NX of a pending marker) before anything else, so one
 * request of any number running at once goes on; the marker then records the job for IDEMPOTENCY_TTL_MS, even
 * after retention removes the job.
 */
export class IdempotencyKeys {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keyspace,
  ) {
    releaseLockScript.register(redis);
  }

  /**
   * Claims `key` of `appId` for a request with this digest (every field that changes what is sent). Resolves the
   * claim, or the job of an earlier request with the same key and body (`replayed`). Throws IdempotencyConflict for
   * another body, IdempotencyPending while the first request still holds it after IDEMPOTENCY_WAIT_MS.
   */
  async claim(appId: string, key: string, digest: string): Promise<{ claim: KeyClaim } | { replayed: string }> {
    const marker = this.keys.idempotency(appId, sha256(key));
    const pending = `${PENDING} ${digest} ${randomUUID()}`; // this request's own claim
    const stored = await this.take(marker, pending, digest);
    if (stored === undefined) return { claim: this.held(marker, pending, digest) };
    const [jobId, storedDigest] = stored.split(' ');
    if (storedDigest !== digest) throw new IdempotencyConflict();
    if (jobId === PENDING || jobId === undefined) throw new IdempotencyPending();
    return { replayed: jobId };
  }

  /**
   * SET NX of this request's pending marker: undefined when claimed, else what the key holds. A request with the
   * same body waits up to IDEMPOTENCY_WAIT_MS for the holder's job.
   */
  private async take(marker: string, pending: string, digest: string): Promise<string | undefined> {
    const deadline = Date.now() + IDEMPOTENCY_WAIT_MS;
    for (;;) {
      if (await this.redis.set(marker, pending, 'PX', IDEMPOTENCY_PENDING_MS, 'NX')) return undefined;
      const stored = await this.redis.get(marker);
      if (stored === null) continue; // released meanwhile (refused or failed): claim it again
      const [head, storedDigest] = stored.split(' ');
      if (head !== PENDING || storedDigest !== digest || Date.now() >= deadline) return stored;
      await sleep(20);
    }
  }

  private held(marker: string, pending: string, digest: string): KeyClaim {
    let recorded = false;
    return {
      record: async (jobId) => {
        await this.redis.set(marker, `${jobId} ${digest}`, 'PX', IDEMPOTENCY_TTL_MS);
        recorded = true;
      },
      // Only our own claim: after IDEMPOTENCY_PENDING_MS another request may hold the key.
      release: async () => {
        if (!recorded) await releaseLockScript(this.redis, { lock: marker }, { owner: pending });
      },
    };
  }
}
