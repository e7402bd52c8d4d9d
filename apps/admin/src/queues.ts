import { INBOUND_QUEUE, OUTBOUND_QUEUE, type QUEUE_NAMES, QUEUE_PREFIX } from '@wx-kf/shared';
import { type Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';

export type QueueName = (typeof QUEUE_NAMES)[number];
export const JOB_STATES = ['waiting', 'active', 'delayed', 'completed', 'failed'] as const;
export type JobState = (typeof JOB_STATES)[number];

export type QueueStats = Record<JobState, number> & { paused: boolean };

/** Both queues on one connection, for operators' tools. */
export class Queues {
  readonly inbound: Queue;
  readonly outbound: Queue;

  constructor(connection: Redis) {
    this.inbound = new Queue(INBOUND_QUEUE, { connection, prefix: QUEUE_PREFIX });
    this.outbound = new Queue(OUTBOUND_QUEUE, { connection, prefix: QUEUE_PREFIX });
    for (const q of this.all) q.on('error', () => {});
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

  async close(): Promise<void> {
    await Promise.all(this.all.map((q) => q.close()));
  }
}
