import { keyspaceOf, type RedisClient } from '../redis/index.js';
import type { Keyspace } from '../redis/keys.js';
import { defineScript, reply } from '../redis/scripts.js';

const slotScript = defineScript('ai-slot', ['slots'], ['holder', 'leaseMs', 'max', 'renew']);
const rateScript = defineScript('ai-rate', ['rate'], ['windowMs']);

/** A slot's lease: renewed while its call runs, so only a crashed worker's slot lapses (after this long). */
export const SLOT_LEASE_MS = 30_000;
const HOUR_MS = 3600_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A model-call slot held: renew it while the call runs (`hold` does), release it after. */
export interface Slot {
  release(): Promise<void>;
}

/**
 * The limits around model calls, in Redis so that they hold across every worker: a semaphore of calls in flight
 * per account (adding workers never multiplies the load on a small model server), a per-user rate, and a daily
 * token budget per account.
 */
export class AiLimits {
  private readonly keys: Keyspace;

  constructor(
    private readonly redis: RedisClient,
    private readonly options: { leaseMs?: number; now?: () => number } = {},
  ) {
    this.keys = keyspaceOf(redis);
    slotScript.register(redis);
    rateScript.register(redis);
  }

  private get leaseMs(): number {
    return this.options.leaseMs ?? SLOT_LEASE_MS;
  }

  /** Takes one of the account's `max` slots for `holder` now (or, `renew`, extends the one it has); false when none. */
  async tryAcquire(appId: string, holder: string, max: number, renew = false): Promise<boolean> {
    const slots = { slots: this.keys.aiSlots(appId) };
    const taken = await slotScript(this.redis, slots, { holder, leaseMs: this.leaseMs, max, renew: renew ? '1' : '0' });
    return reply.int(taken) === 1;
  }

  /**
   * Waits (polling with jitter, never failing the call) for one of the account's `max` slots, at most `waitMs`;
   * resolves the slot, renewed every third of its lease until released, or undefined when the wait ran out.
   */
  async acquire(appId: string, holder: string, max: number, waitMs: number): Promise<Slot | undefined> {
    const deadline = Date.now() + waitMs;
    for (let pause = 25; ; pause = Math.min(pause * 2, 250)) {
      if (await this.tryAcquire(appId, holder, max)) break;
      if (Date.now() >= deadline) return undefined;
      await sleep(pause / 2 + Math.random() * pause);
    }
    const timer = setInterval(() => {
      this.tryAcquire(appId, holder, max, true).catch(() => undefined);
    }, this.leaseMs / 3);
    timer.unref();
    return {
      release: async () => {
        clearInterval(timer);
        await this.redis.zrem(this.keys.aiSlots(appId), holder).catch(() => undefined);
      },
    };
  }

  /** Counts a model call for the user; true while they are within `perHour` calls this hour (0 = no limit). */
  async withinUserRate(appId: string, openid: string, perHour: number): Promise<boolean> {
    if (perHour <= 0) return true;
    const n = await rateScript(this.redis, { rate: this.keys.aiUserRate(appId, openid) }, { windowMs: HOUR_MS });
    return reply.int(n) <= perHour;
  }

  /** The UTC day a budget counts in, `YYYY-MM-DD`. */
  private day(): string {
    return new Date((this.options.now ?? Date.now)()).toISOString().slice(0, 10);
  }

  /** Tokens the account used today (UTC). */
  async tokensToday(appId: string): Promise<number> {
    return Number((await this.redis.get(this.keys.aiTokens(appId, this.day()))) ?? 0);
  }

  /** Adds a call's tokens (in and out) to the account's day. */
  async spend(appId: string, tokens: number): Promise<void> {
    if (tokens <= 0) return;
    const key = this.keys.aiTokens(appId, this.day());
    // Kept two days: today's count, and yesterday's for an operator who looks in the morning.
    await Promise.all([this.redis.incrby(key, Math.round(tokens)), this.redis.pexpire(key, 2 * 24 * HOUR_MS)]);
  }
}
