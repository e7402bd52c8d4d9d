import { createHash } from 'node:crypto';
import { type DefaultJobOptions, Queue } from 'bullmq';
import { keyspaceOf, type RedisClient } from '../redis/index.js';
import { INBOUND_QUEUE, OUTBOUND_QUEUE } from '../redis/keys.js';
import { queueTelemetry } from '../tracing/index.js';
import type { PushFormat, PushMode } from '../wechat/body.js';
import type { ReplyItem } from '../wechat/custom-message.js';
import { dedupKey } from '../wechat/dedup.js';
import type { InboundMessage } from '../wechat/message.js';

export { INBOUND_QUEUE, OUTBOUND_QUEUE, QUEUE_NAMES, QUEUE_PREFIX } from '../redis/keys.js';
export { INBOUND_ACTIONS, type InboundAction, type InboundResult, readInboundResult } from './result.js';

/**
 * WeChat re-delivers within ~15 s; an hour of de-duplication covers every retry by a wide margin, and every
 * replay the timestamp check lets in (at most 2 × MAX_TIMESTAMP_TOLERANCE_SECONDS after the first delivery).
 */
export const DEDUP_TTL_MS = 3600_000;

/** A verified push, as the ingress stores it. */
export interface InboundJobData {
  appId: string;
  /** The correlation id carried through logs from the push to the send result (= the inbound job id). */
  msgKey: string;
  mode: PushMode;
  format: PushFormat;
  /** Unix ms when the ingress accepted it. */
  receivedAt: number;
  /** Answered with transfer_customer_service: the 客服 tool handles it, the worker sends nothing. */
  transferred: boolean;
  message: InboundMessage;
  /** WeCom: pulled as history (a first pull's old message): recorded in the timeline, never answered. */
  history?: boolean;
  /** Set by the worker once a multi-reply plan is part sent, so a retry resumes it instead of planning again. */
  plan?: ReplyPlan;
}

/** The replies decided for one message and how many WeChat has accepted. */
export interface ReplyPlan {
  replies: OutboundJobData['replies'];
  source: OutboundJobData['source'];
  sent: number;
  /** The model handed the user to a person: its hand-over replies still go while the handoff is open. */
  ignoreHandoff?: boolean;
}

/** Replies to send to one user, in order. */
export interface OutboundJobData {
  appId: string;
  touser: string;
  msgKey: string;
  /** Custom/send bodies without touser, media by media_id (never a file: job data is not trusted). */
  replies: ReplyItem[];
  /** Replies already accepted by WeChat; a retried job resumes after them. */
  sent: number;
  source: 'rules' | 'handler' | 'api' | 'ai';
  receivedAt?: number;
  /** Send even where the user's window or quota says no (the send API's `ignoreWindow`). */
  ignoreWindow?: boolean;
  /** Send even while the user is handed to a human agent (the send API's `ignoreHandoff`). */
  ignoreHandoff?: boolean;
  /** WeCom: the customer-service account (open_kfid) the customer wrote to, which replies come from. */
  openKfId?: string;
  /** WeCom: an event's code (enter_session's welcome, 20 s) the first reply goes out with. */
  code?: string;
}

/** Completed and failed jobs are kept for a bounded age and count. */
export const JOB_RETENTION: Pick<DefaultJobOptions, 'removeOnComplete' | 'removeOnFail'> = {
  removeOnComplete: { age: 24 * 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 50_000 },
};

/**
 * The inbound job id of a message: one per account and de-duplication key, so every re-delivery of a push
 * (WeChat retries, several ingress replicas) maps to the same job. Readable for MsgIds; hashed for events.
 */
export function inboundJobId(appId: string, message: InboundMessage): string {
  const key = dedupKey(message);
  if (key.startsWith('m:')) return `${appId}-m${key.slice(2)}`;
  return `${appId}-e${createHash('sha1').update(key).digest('hex').slice(0, 24)}`;
}

/** Inbound jobs: a failing handler is retried with backoff before the job fails. */
export const INBOUND_JOB_OPTIONS: DefaultJobOptions = {
  ...JOB_RETENTION,
  attempts: 5,
  backoff: { type: 'exponential', delay: 1000 },
};

/**
 * A WeCom pull notice's job: its pull is the only thing that fetches the customers' messages until the next
 * notice, so it outlasts an outage of WeCom's API (12 tries, 2 s apart and doubling: about 68 minutes in all).
 */
export const PULL_NOTICE_JOB_OPTIONS: DefaultJobOptions = {
  attempts: 12,
  backoff: { type: 'exponential', delay: 2000 },
};

/** Outbound jobs: retryable send errors back off exponentially with jitter (about 17 minutes in all). */
export const OUTBOUND_JOB_OPTIONS: DefaultJobOptions = {
  ...JOB_RETENTION,
  attempts: 10,
  backoff: { type: 'exponential', delay: 1000, jitter: 0.5 },
};

/**
 * The job the ingress stores for a verified push: named after its de-duplication key (and de-duplicated for
 * an hour beyond the job's own life), with the inbound retry options.
 */
export function inboundJob(
  appId: string,
  message: InboundMessage,
  push: {
    mode: PushMode;
    format: PushFormat;
    transferred?: boolean;
    receivedAt?: number;
    history?: boolean;
    /** Overrides of the inbound job options (a WeCom pull notice's PULL_NOTICE_JOB_OPTIONS). */
    options?: DefaultJobOptions;
  },
) {
  const jobId = inboundJobId(appId, message);
  const data: InboundJobData = {
    appId,
    msgKey: jobId,
    mode: push.mode,
    format: push.format,
    receivedAt: push.receivedAt ?? Date.now(),
    transferred: push.transferred ?? false,
    message,
    ...(push.history ? { history: true } : {}),
  };
  return {
    name: 'push',
    data,
    opts: { ...INBOUND_JOB_OPTIONS, ...push.options, jobId, deduplication: { id: jobId, ttl: DEDUP_TTL_MS } },
  };
}

/**
 * A job of either queue as a tool reads it back from Redis: any field may be missing (a job added by hand, an
 * older version), so readers check before they use one.
 */
export type StoredJobData = Partial<Omit<InboundJobData, 'message'>> &
  Partial<OutboundJobData> & { message?: Partial<InboundMessage> };

/** The job data each queue holds. */
export interface QueueData {
  [INBOUND_QUEUE]: InboundJobData;
  [OUTBOUND_QUEUE]: OutboundJobData;
}

/**
 * One of wx-kf's queues on `connection`: shard `shard`'s (default 0, the only one of a one-shard layout). While
 * tracing is on, each job it adds carries the adding span's context (bullmq-otel).
 */
export function openQueue<N extends keyof QueueData>(name: N, connection: RedisClient, shard = 0): Queue<QueueData[N]> {
  const prefix = keyspaceOf(connection).queuePrefix(shard);
  const queue = new Queue<QueueData[N]>(name, { connection, prefix, telemetry: queueTelemetry() });
  queue.on('error', () => {}); // the connection's own listener (createRedis) logs an outage once
  return queue;
}

/** The queue `name` of every shard (index = shard). */
export function openShardQueues<N extends keyof QueueData>(name: N, connection: RedisClient): Queue<QueueData[N]>[] {
  return keyspaceOf(connection)
    .allShards()
    .map((shard) => openQueue(name, connection, shard));
}
