import type { TokenManager } from '@wx-kf/shared/api';
import type { Config } from '@wx-kf/shared/config';
import type { Logger } from '@wx-kf/shared/log';
import { NOTIFY_JOB } from '@wx-kf/shared/notify';
import {
  INBOUND_QUEUE,
  type InboundJobData,
  OUTBOUND_QUEUE,
  type OutboundJobData,
  openQueue,
} from '@wx-kf/shared/queue';
import { isConnectionError, keyspaceOf } from '@wx-kf/shared/redis';
import { queueTelemetry, traceJob } from '@wx-kf/shared/tracing';
import { type DefaultJobOptions, type Job, type Queue, Worker } from 'bullmq';
import type { Registry } from 'prom-client';
import type { WorkerMetrics } from './metrics.js';
import { listenForMetrics } from './metrics-server.js';
import { buildParts, type WorkerParts } from './parts.js';
import { startWeComCatchUp } from './processors/catch-up.js';
import { conversationHooks } from './processors/conversation.js';
import { startHandoffSweeper } from './processors/handoff.js';
import { type InboundResult, inboundProcessor } from './processors/inbound.js';
import { outboundProcessor } from './processors/outbound.js';
import { pullProcessor } from './processors/pull.js';
import { replySender } from './processors/send.js';
import { sessionRefused } from './processors/wecom.js';
import { AiReplier } from './replies/ai-reply.js';
import type { WeComParts } from './wecom-parts.js';

export interface RunningWorker {
  registry: Registry;
  metrics: WorkerMetrics;
  tokens: TokenManager;
  /** The worker's /metrics and /healthz listener (its bound address), when WORKER_METRICS_PORT is set. */
  metricsUrl?: string | undefined;
  /** Stops taking jobs, lets the active ones finish, then closes every connection. */
  close(): Promise<void>;
}

export interface WorkerStartOptions {
  registry?: Registry;
  /** Token manager tuning (tests shorten leases and cool-downs). */
  tokenOptions?: { leaseMs?: number; cooldownMs?: number; waitMs?: number };
  /** Options of outbound jobs created by the worker (default OUTBOUND_JOB_OPTIONS). */
  outboundJobOptions?: DefaultJobOptions;
}

/** One shard's queues: where its outbound jobs go, and its inbound queue as the users' order sees it. */
interface ShardQueues {
  shard: number;
  outbound: Queue<OutboundJobData>;
  inbound: Queue<InboundJobData>;
}

/** A shard's worker for queue `name`; while tracing is on, its jobs' spans say whose message they carry. */
function tracedWorker<D, R>(
  p: WorkerParts,
  name: string,
  processor: (job: Job<D>, token?: string) => Promise<R>,
  shard: number,
  concurrency: number,
): Worker<D, R> {
  return new Worker<D, R>(name, traceJob(name, processor), {
    connection: p.connection,
    prefix: keyspaceOf(p.connection).queuePrefix(shard),
    concurrency,
    lockDuration: p.config.worker.lockMs,
    stalledInterval: p.config.worker.lockMs,
    maxStalledCount: 2,
    telemetry: queueTelemetry(), // while tracing is on: each job's `process` span continues its producer's trace
  });
}

/** A shard's two workers: its inbound jobs, and the outbound jobs they create on the same (user's) shard. */
function shardWorkers(p: WorkerParts, q: ShardQueues, concurrency: number, pulls?: PullJob) {
  const { config, logger, accounts, metrics, redis, channels, handoff, conversations, ai } = p;
  // Users' send windows, the order of their messages, their timelines and typing (processors/conversation.ts).
  const conversation = conversationHooks({
    conversations,
    inbound: q.inbound,
    outbound: q.outbound,
    channels,
    logger,
    typingAfterMs: config.worker.typingAfterMs,
  });
  const onSessionRefused = sessionRefused(channels, handoff, logger);
  const sendReplies = replySender({ channels, redis, logger, metrics, conversation, onSessionRefused });
  const aiReplies =
    ai &&
    new AiReplier({
      ...ai,
      conversations,
      conversation,
      sendReplies,
      channels,
      handoff,
      metrics: metrics.ai,
      logger,
    });
  const inbound = inboundProcessor({
    accounts,
    rules: p.rules,
    handler: p.handler,
    outbound: q.outbound,
    channels,
    logger,
    sendReplies,
    outboundJobOptions: p.options.outboundJobOptions,
    conversation,
    handoff,
    ai: aiReplies,
    pull: pulls,
  });
  const send = outboundProcessor(sendReplies, accounts, handoff, (data, release) =>
    conversation.release(data.appId, data.touser, release),
  );
  return [
    watched(
      p,
      INBOUND_QUEUE,
      tracedWorker<InboundJobData, InboundResult>(p, INBOUND_QUEUE, inbound, q.shard, concurrency),
    ),
    watched(
      p,
      OUTBOUND_QUEUE,
      tracedWorker<OutboundJobData, unknown>(
        p,
        OUTBOUND_QUEUE,
        (job, token) => (job.name === NOTIFY_JOB ? p.notify(job, token) : send(job, token)),
        q.shard,
        concurrency,
      ),
    ),
  ];
}

/** A WeCom pull notice's job (processors/pull.ts). */
type PullJob = (job: Job<InboundJobData>) => Promise<InboundResult>;

function wecomPuller(p: WorkerParts, wecom: WeComParts, inbound: Queue<InboundJobData>[]): PullJob {
  return pullProcessor({
    corps: wecom.corps,
    kf: wecom.channel.kf,
    state: wecom.state,
    redis: p.redis,
    inbound,
    conversations: p.conversations,
    historyMaxAgeMs: p.config.wecom.historyMaxAgeMs,
    handoffIdleMs: p.config.handoff.idleMs,
    metrics: wecom.metrics,
    logger: p.logger,
    durability: p.config.redis.durability,
  });
}

/** The worker, its errors logged and its jobs' ends counted (and logged when they fail). */
function watched<D extends { msgKey: string }, R>(p: WorkerParts, name: string, worker: Worker<D, R>): Worker<D, R> {
  const { logger, metrics } = p;
  // A lost Redis connection is logged once by createRedis, not here at every reconnection attempt of each worker.
  worker.on('error', (error) => {
    if (!isConnectionError(error)) logger.error({ queue: name, err: error.message }, 'worker error');
  });
  worker.on('completed', () => metrics.jobs.inc({ queue: name, result: 'completed' }));
  worker.on('failed', (job, error) => {
    metrics.jobs.inc({ queue: name, result: 'failed' });
    const final = !job || job.attemptsMade >= (job.opts.attempts ?? 1) || error.name === 'UnrecoverableError';
    logger[final ? 'error' : 'warn'](
      {
        queue: name,
        jobId: job?.id,
        // Job data is untrusted: a job added by hand may have none.
        msgKey: job?.data?.msgKey,
        attempt: job?.attemptsMade,
        reason: error.message,
      },
      final ? 'job failed' : 'job will be retried',
    );
  });
  return worker;
}

/** Starts the inbound and outbound BullMQ workers for every configured account. */
export async function startWorker(
  config: Config,
  logger: Logger,
  options: WorkerStartOptions = {},
): Promise<RunningWorker> {
  const p = await buildParts(config, logger, options);
  const { accounts, registry, metrics, tokens, http, connection, redis, handoff } = p;
  // Idle closes are noticed within half the timeout (at most 15 s late) and counted once across workers.
  const stopSweeper = startHandoffSweeper(handoff, Math.min(15_000, Math.max(250, config.handoff.idleMs / 2)), logger);
  // Every shard is consumed: its inbound jobs, and the outbound jobs they create on the same (user's) shard.
  // WORKER_CONCURRENCY is the process's budget, split over the shards.
  const shards = keyspaceOf(connection).allShards();
  const concurrency = Math.max(1, Math.ceil(config.worker.concurrency / shards.length));
  // A user's jobs all live on the user's shard: each shard's workers see their users' order through its queues.
  const queues = shards.map((shard) => ({
    shard,
    outbound: openQueue(OUTBOUND_QUEUE, connection, shard),
    inbound: openQueue(INBOUND_QUEUE, redis, shard),
  }));
  // WeCom: a pull notice's job stores the customers' messages on their own shards' inbound queues.
  const pulls =
    p.wecom &&
    wecomPuller(
      p,
      p.wecom,
      queues.map((q) => q.inbound),
    );
  const workers: Worker[] = queues.flatMap((q) => shardWorkers(p, q, concurrency, pulls));
  // WeCom: each known open_kfid is pulled every WECOM_CATCHUP_SECONDS, whether or not a callback came.
  const stopCatchUp =
    p.wecom && config.wecom.catchUpMs > 0
      ? startWeComCatchUp({
          corps: p.wecom.corps,
          state: p.wecom.state,
          redis: p.redis,
          inbound: queues.map((q) => q.inbound),
          everyMs: config.wecom.catchUpMs,
          logger,
        })
      : undefined;

  const listener = config.worker.metrics ? await listenForMetrics(config.worker.metrics, workers, registry) : undefined;
  const metricsUrl = listener?.url;
  logger.info(
    {
      accounts: [...accounts.keys()],
      concurrency: config.worker.concurrency,
      shards: shards.length,
      handler: Boolean(p.handler),
      ai: [...p.aiSettings.keys()],
      metricsUrl,
    },
    'worker started',
  );

  return {
    registry,
    metrics,
    tokens,
    metricsUrl,
    close: async () => {
      stopSweeper();
      stopCatchUp?.();
      await Promise.all(workers.map((w) => w.close()));
      await listener?.server.close();
      await Promise.all(queues.flatMap((q) => [q.outbound, q.inbound]).map((q) => q.close()));
      tokens.close();
      await http.close();
      await p.wecom?.close();
      await Promise.all([connection.quit(), redis.quit()]).catch(() => undefined);
    },
  };
}
