import { errcodeRule } from '@wx-kf/shared/errcodes';
import { INBOUND_QUEUE, OUTBOUND_QUEUE, openShardQueues, QUEUE_NAMES } from '@wx-kf/shared/queue';
import {
  type Keyspace,
  keyspaceOf,
  PAUSED_PATTERN,
  pausedAppId,
  primaries,
  type RedisClient,
} from '@wx-kf/shared/redis';
import type { Job, Queue } from 'bullmq';

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

  /** A queue's name as the dashboard shows it: `inbound`, or `s3.inbound` for shard 3 of a sharded layout. */
  displayPrefix(queue: Queue): string {
    const shard = [this.inbounds.indexOf(queue), this.outbounds.indexOf(queue)].find((i) => i >= 0) ?? 0;
    return this.keys.shards > 1 ? `s${shard}.` : '';
  }

  /** Counts per queue over all shards, as `pnpm queues stats --json` prints them (prioritized count as waiting). */
  async stats(): Promise<Record<string, QueueStats>> {
    const entries = await Promise.all(
      QUEUE_NAMES.map(async (name) => {
        const shards = await Promise.all(
          (this.byName(name) ?? []).map(async (q) => {
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

  async close(): Promise<void> {
    await Promise.all(this.all.map((q) => q.close()));
  }
}
