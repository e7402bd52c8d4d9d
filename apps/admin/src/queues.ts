import { INBOUND_QUEUE, OUTBOUND_QUEUE, openQueue, type QUEUE_NAMES } from '@wx-kf/shared/queue';
import { redisKeys } from '@wx-kf/shared/redis';
import type { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';

export type QueueName = (typeof QUEUE_NAMES)[number];
export const JOB_STATES = ['waiting', 'active', 'delayed', 'completed', 'failed'] as const;
export type JobState = (typeof JOB_STATES)[number];

export type QueueStats = Record<JobState, number> & { paused: boolean };

/**
 * An account whose sends are held: `quota` when the worker paused it on 45009 (it expires by itself),
 * `operator` when someone ran `pnpm queues pause --account` (no expiry by design: it lasts until `resume`).
 */
export interface AccountPause {
  appId: string;
  reason: 'quota' | 'operator';
  /** What the key holds: "45009 <errmsg>" or "paused by an operator". */
  detail: string;
  /** ISO 8601 time the pause ends by itself; null for an operator's pause. */
  until: string | null;
}

/** The value the CLI stores for an operator's pause (the worker stores "<errcode> <errmsg>" for 45009). */
export const OPERATOR_PAUSE = 'paused by an operator';

/** Both queues on one connection, for operators' tools. */
export class Queues {
  readonly inbound: Queue;
  readonly outbound: Queue;

  constructor(readonly connection: Redis) {
    this.inbound = openQueue(INBOUND_QUEUE, connection);
    this.outbound = openQueue(OUTBOUND_QUEUE, connection);
  }

  get all(): Queue[] {
    return [this.inbound, this.outbound];
  }

  byName(name: string): Queue | undefined {
    return this.all.find((q) => q.name === name);
  }

  /** Counts per queue, as `pnpm queues stats --json` prints them (prioritized jobs count as waiting). */
  async stats(): Promise<Record<string, QueueStats>> {
    const entries = await Promise.all(
      this.all.map(async (q) => {
        const [counts, paused] = await Promise.all([q.getJobCounts(...JOB_STATES, 'prioritized'), q.isPaused()]);
        const stats = Object.fromEntries(JOB_STATES.map((s) => [s, counts[s] ?? 0])) as Record<JobState, number>;
        stats.waiting += counts.prioritized ?? 0;
        return [q.name, { ...stats, paused }] as const;
      }),
    );
    return Object.fromEntries(entries);
  }

  /** A job by id from either queue (inbound ids end in the MsgId or event hash; outbound ones in `-r`). */
  async find(jobId: string): Promise<Job | undefined> {
    for (const q of this.all) {
      const job = await q.getJob(jobId);
      if (job) return job;
    }
    return undefined;
  }

  /** Seconds the oldest waiting job of a queue has waited (0 when none wait). */
  async oldestWaitingAge(queue: Queue): Promise<number> {
    const [oldest] = await queue.getJobs(['waiting'], 0, 0, true);
    return oldest ? Math.max(0, (Date.now() - oldest.timestamp) / 1000) : 0;
  }

  /** The pause of each given account that has one. */
  async pauses(appIds: readonly string[]): Promise<AccountPause[]> {
    if (appIds.length === 0) return [];
    const pipeline = this.connection.pipeline();
    for (const appId of appIds) pipeline.get(redisKeys.paused(appId)).pttl(redisKeys.paused(appId));
    const results = (await pipeline.exec()) ?? [];
    const pauses: AccountPause[] = [];
    appIds.forEach((appId, i) => {
      const detail = results[2 * i]?.[1] as string | null;
      const ttl = results[2 * i + 1]?.[1] as number;
      if (detail === null || detail === undefined) return;
      pauses.push({
        appId,
        reason: detail.startsWith('45009') ? 'quota' : 'operator',
        detail: detail.slice(0, 200),
        until: ttl > 0 ? new Date(Date.now() + ttl).toISOString() : null,
      });
    });
    return pauses;
  }

  /** Every paused account, configured or not (a SCAN over the pause keys: for operators, not hot paths). */
  async allPauses(): Promise<AccountPause[]> {
    const prefix = redisKeys.paused('');
    const appIds = new Set<string>();
    let cursor = '0';
    do {
      const [next, keys] = await this.connection.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      for (const key of keys) appIds.add(key.slice(prefix.length));
      cursor = next;
    } while (cursor !== '0');
    return this.pauses([...appIds].sort());
  }

  async close(): Promise<void> {
    await Promise.all(this.all.map((q) => q.close()));
  }
}
