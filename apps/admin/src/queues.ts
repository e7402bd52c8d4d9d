import { errcodeRule } from '@wx-kf/shared/errcodes';
import { INBOUND_QUEUE, OUTBOUND_QUEUE, openShardQueues, QUEUE_NAMES } from '@wx-kf/shared/queue';
import {
  type Keyspace,
  keyspaceOf,
  PAUSED_PATTERN,
  pausedAppId,
  primaries,
  type RedisClient,
  whenWritable,
} from '@wx-kf/shared/redis';
import type { Job, JobType, Queue } from 'bullmq';

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

/** Who paused, from what the key holds: a worker, on an errcode whose rule pauses the account; else an operator. */
function pauseReason(detail: string): AccountPause['reason'] {
  const errcode = /^-?\d+(?= |$)/.exec(detail)?.[0];
  return errcode !== undefined && errcodeRule(Number(errcode)).action === 'pause_account' ? 'quota' : 'operator';
}

/**
 * Both queues of every shard on one connection, for operators' tools: reads add the shards up, so a sharded
 * deployment looks like one inbound and one outbound queue.
 */
export class Queues {
  /** Each queue's shards (index = shard). */
  readonly inbounds: Queue[];
  readonly outbounds: Queue[];

  /** The key layout of `connection`'s deployment. */
  readonly keys: Keyspace;

  constructor(readonly connection: RedisClient) {
    this.keys = keyspaceOf(connection);
    this.inbounds = openShardQueues(INBOUND_QUEUE, connection);
    this.outbounds = openShardQueues(OUTBOUND_QUEUE, connection);
  }

  /** Every queue of every shard. */
  get all(): Queue[] {
    return [...this.inbounds, ...this.outbounds];
  }

  /** The shards of queue `name` (inbound or outbound); undefined for another name. */
  byName(name: string): Queue[] | undefined {
    if (name === INBOUND_QUEUE) return this.inbounds;
    if (name === OUTBOUND_QUEUE) return this.outbounds;
    return undefined;
  }

  /** The outbound queue of a user's shard (where the send API puts their messages). */
  outboundFor(appId: string, touser: string): Queue {
    return this.outbounds[this.keys.userShard(appId, touser)] as Queue;
  }

  /** Those of `queues` on one shard (`--shard <n>`); a RangeError for a shard the layout does not have. */
  ofShard(queues: readonly Queue[], shard: number): Queue[] {
    if (!Number.isInteger(shard) || shard < 0 || shard >= this.keys.shards) {
      throw new RangeError(`--shard must be 0 to ${this.keys.shards - 1} (REDIS_SHARDS is ${this.keys.shards})`);
    }
    return queues.filter((q) => this.inbounds[shard] === q || this.outbounds[shard] === q);
  }

  /**
   * Counts per queue over all shards (or one), as `pnpm queues stats --json` prints them (prioritized count as
   * waiting).
   */
  async stats(shard?: number): Promise<Record<string, QueueStats>> {
    const entries = await Promise.all(
      QUEUE_NAMES.map(async (name) => {
        const named = this.byName(name) ?? [];
        const shards = await Promise.all(
          (shard === undefined ? named : this.ofShard(named, shard)).map(async (q) => {
            const [counts, paused] = await Promise.all([q.getJobCounts(...JOB_STATES, 'prioritized'), q.isPaused()]);
            return { counts, paused };
          }),
        );
        const sum = (state: JobState | 'prioritized') => shards.reduce((n, { counts }) => n + (counts[state] ?? 0), 0);
        const stats: QueueStats = {
          waiting: sum('waiting') + sum('prioritized'),
          active: sum('active'),
          delayed: sum('delayed'),
          completed: sum('completed'),
          failed: sum('failed'),
          paused: shards.some((s) => s.paused),
        };
        return [name, stats] as const;
      }),
    );
    return Object.fromEntries(entries);
  }

  /** A job by id from either queue on any shard (inbound ids end in the MsgId or event hash; outbound in `-r`). */
  async find(jobId: string, queues: readonly Queue[] = this.all): Promise<Job | undefined> {
    const found = await Promise.all(queues.map((q) => q.getJob(jobId)));
    return found.find(Boolean) ?? undefined;
  }

  /** Seconds the oldest waiting job of a queue (any shard) has waited (0 when none wait). */
  async oldestWaitingAge(name: string): Promise<number> {
    const oldest = await Promise.all(
      (this.byName(name) ?? []).map(async (q) => (await q.getJobs(['waiting'], 0, 0, true))[0]?.timestamp),
    );
    const first = Math.min(...oldest.map((t) => t ?? Number.POSITIVE_INFINITY));
    return Number.isFinite(first) ? Math.max(0, (Date.now() - first) / 1000) : 0;
  }

  /** The pause of each given account that has one. */
  async pauses(appIds: readonly string[]): Promise<AccountPause[]> {
    if (appIds.length === 0) return [];
    // Separate commands, not one pipeline: on a cluster the accounts' keys sit in different slots.
    const stored = await Promise.all(
      appIds.map(async (appId) => {
        const key = this.keys.paused(appId);
        const [detail, ttl] = await Promise.all([this.connection.get(key), this.connection.pttl(key)]);
        return { appId, detail, ttl };
      }),
    );
    const pauses: AccountPause[] = [];
    for (const { appId, detail, ttl } of stored) {
      if (detail === null || detail === undefined) continue;
      pauses.push({
        appId,
        reason: pauseReason(detail),
        detail: detail.slice(0, 200),
        until: ttl > 0 ? new Date(Date.now() + ttl).toISOString() : null,
      });
    }
    return pauses;
  }

  /** Every paused account, configured or not (a SCAN of every primary: for operators, not hot paths). */
  async allPauses(): Promise<AccountPause[]> {
    // A Cluster knows its primaries only once it has read the slots: in a fresh process the list is empty.
    await this.ready();
    const appIds = new Set<string>();
    for (const node of primaries(this.connection)) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', PAUSED_PATTERN, 'COUNT', 1000);
        for (const key of keys) {
          const appId = pausedAppId(key);
          if (appId) appIds.add(appId);
        }
        cursor = next;
      } while (cursor !== '0');
    }
    return this.pauses([...appIds].sort());
  }

  /** Resolves once the connection is ready (a Cluster: its slots read), or fails after `ms`. */
  async ready(ms = READY_TIMEOUT_MS): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Redis is not ready after ${ms / 1000} s`)), ms);
    });
    try {
      await Promise.race([whenWritable(this.connection), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.all.map((q) => q.close()));
  }
}

/** How long an operator's command waits for Redis (a Cluster's slots) before it gives up. */
const READY_TIMEOUT_MS = 10_000;

/**
 * When a job entered `state`, the order BullMQ lists each state in (newest first): finished for completed and
 * failed, started for active, due for delayed, created otherwise.
 */
export function enteredState(job: Job, state: string): number {
  if (state === 'completed' || state === 'failed') return job.finishedOn ?? job.timestamp;
  if (state === 'active') return job.processedOn ?? job.timestamp;
  if (state === 'delayed') return job.timestamp + (job.delay ?? 0);
  return job.timestamp;
}

/**
 * Jobs in `state` over several queues (every shard of a queue, or of both) as if they were one: newest first,
 * positions `start` to `end` (inclusive; -1: to the last). Each queue gives its first `end + 1`, so a page costs
 * at most that many jobs per shard.
 */
export async function newestFirst(queues: readonly Queue[], state: JobType, start = 0, end = -1): Promise<Job[]> {
  const lists = await Promise.all(queues.map((q) => q.getJobs([state], 0, end, false)));
  const jobs = lists.flat().filter((job): job is Job => Boolean(job));
  jobs.sort((a, b) => enteredState(b, state) - enteredState(a, state) || String(b.id).localeCompare(String(a.id)));
  return jobs.slice(start, end < 0 ? undefined : end + 1);
}
