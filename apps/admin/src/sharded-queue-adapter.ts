import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import type {
  JobCleanStatus,
  JobCounts,
  JobStatus,
  MetricsType,
  QueueAdapterOptions,
  QueueMetrics,
  QueueWorker,
} from '@bull-board/api/typings/app';
import type { Job, JobType, Queue } from 'bullmq';
import { newestFirst } from './queues.js';

/** BullMQ's suffix before a named worker's name in its connection name (bull-board reads the name after it). */
const WORKER_NAME_SEPARATOR = ':w:';

const JOB_TYPES: readonly string[] = [
  'active',
  'waiting',
  'waiting-children',
  'prioritized',
  'completed',
  'failed',
  'delayed',
] satisfies JobType[];
const isJobType = (status: string): status is JobType => JOB_TYPES.includes(status);

/**
 * One queue of the dashboard over all its shards: bull-board lists `inbound` and `outbound` once each, whatever
 * REDIS_SHARDS is. Counts are added up; lists are merged newest first (a page costs at most its last position per
 * shard); a job is looked up on every shard and handed over as its own Job, so retry, promote and remove act on the
 * shard that holds it; queue-wide actions (pause, resume, clean, promote all, empty) run on every shard. What the
 * shards of one queue share or do not use (its name, schedulers, rate limits, Redis info) is read from the first.
 */
export class ShardedQueueAdapter extends BullMQAdapter {
  private readonly shards: readonly Queue[];

  constructor(shards: readonly Queue[], options: Partial<QueueAdapterOptions> = {}) {
    const [first] = shards;
    if (!first) throw new Error('a queue has at least one shard');
    super(first, options);
    this.shards = shards;
  }

  override async getJob(id: string): Promise<Job | undefined> {
    const found = await Promise.all(this.shards.map((q) => q.getJob(id)));
    return found.find((job): job is Job => Boolean(job));
  }

  override async getJobs(statuses: JobStatus[], start = 0, end = -1): Promise<Job[]> {
    const types = statuses.flatMap((s) => (isJobType(s) ? [s] : []));
    const lists = await Promise.all(types.map((s) => newestFirst(this.shards, s, start, end)));
    return lists.flat();
  }

  override async getJobCounts(): Promise<JobCounts> {
    const counts = await Promise.all(this.shards.map((q) => q.getJobCounts()));
    const total: JobCounts = {};
    for (const shard of counts) {
      for (const status of this.getJobStatuses()) total[status] = (total[status] ?? 0) + (shard[status] ?? 0);
    }
    return total;
  }

  override async getJobLogs(id: string): Promise<string[]> {
    // Only the shard holding the job has its logs.
    const logs = await Promise.all(this.shards.map((q) => q.getJobLogs(id)));
    return logs.flatMap((l) => l.logs);
  }

  override async getMetrics(type: MetricsType, start?: number, end?: number): Promise<QueueMetrics> {
    const all = await Promise.all(this.shards.map((q) => q.getMetrics(type, start, end)));
    const data: number[] = [];
    for (const m of all) {
      for (const [i, n] of m.data.entries()) data[i] = (data[i] ?? 0) + (Number(n) || 0);
    }
    const sum = (pick: (m: (typeof all)[number]) => number) => all.reduce((n, m) => n + (Number(pick(m)) || 0), 0);
    return {
      meta: {
        count: sum((m) => m.meta.count),
        prevTS: Math.max(...all.map((m) => Number(m.meta.prevTS) || 0)),
        prevCount: sum((m) => m.meta.prevCount),
      },
      data,
      count: sum((m) => m.count),
    };
  }

  override async getWorkers(): Promise<QueueWorker[] | null> {
    const clients = await Promise.all(this.shards.map((q) => q.getWorkers()));
    return this.normalizeWorkers(clients.flat(), WORKER_NAME_SEPARATOR);
  }

  override async isPaused(): Promise<boolean> {
    return (await Promise.all(this.shards.map((q) => q.isPaused()))).some(Boolean);
  }

  override async pause(): Promise<void> {
    await Promise.all(this.shards.map((q) => q.pause()));
  }

  override async resume(): Promise<void> {
    await Promise.all(this.shards.map((q) => q.resume()));
  }

  override async clean(status: JobCleanStatus, graceTimeMs: number): Promise<void> {
    await Promise.all(this.shards.map((q) => q.clean(graceTimeMs, Number.MAX_SAFE_INTEGER, status)));
  }

  override async empty(): Promise<void> {
    await Promise.all(this.shards.map((q) => q.drain()));
  }

  override async promoteAll(): Promise<void> {
    await Promise.all(this.shards.map((q) => q.promoteJobs()));
  }

  override async obliterate({ force = false } = {}): Promise<void> {
    await Promise.all(this.shards.map((q) => q.obliterate({ force })));
  }
}
