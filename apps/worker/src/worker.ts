import type { AddressInfo } from 'node:net';
import { aiAccounts } from '@wx-kf/shared/ai';
import { NotifyClient, TokenManager, WeChatClient, WeChatHttp } from '@wx-kf/shared/api';
import type { AccountConfig, Config } from '@wx-kf/shared/config';
import { Conversations } from '@wx-kf/shared/conversation';
import { Handoffs, handoffAccounts } from '@wx-kf/shared/handoff';
import type { Logger } from '@wx-kf/shared/log';
import { NOTIFY_JOB } from '@wx-kf/shared/notify';
import {
  INBOUND_QUEUE,
  type InboundJobData,
  OUTBOUND_QUEUE,
  type OutboundJobData,
  openQueue,
} from '@wx-kf/shared/queue';
import { createRedis, isConnectionError, keyspaceOf } from '@wx-kf/shared/redis';
import { loadAccountRules } from '@wx-kf/shared/rules';
import { queueTelemetry, traceJob } from '@wx-kf/shared/tracing';
import { type DefaultJobOptions, type Job, Worker } from 'bullmq';
import Fastify, { type FastifyInstance, LogController } from 'fastify';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { WorkerMetrics } from './metrics.js';
import { conversationHooks } from './processors/conversation.js';
import { startHandoffSweeper, type WorkerHandoff } from './processors/handoff.js';
import { type InboundResult, inboundProcessor } from './processors/inbound.js';
import { notificationProcessor } from './processors/notify.js';
import { outboundProcessor } from './processors/outbound.js';
import { replySender } from './processors/send.js';
import { AiReplier, aiParts } from './replies/ai-reply.js';
import { loadHandler } from './replies/handler.js';

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

/** Starts the inbound and outbound BullMQ workers for every configured account. */
export async function startWorker(
  config: Config,
  logger: Logger,
  options: WorkerStartOptions = {},
): Promise<RunningWorker> {
  const accounts = new Map<string, AccountConfig>(config.accounts.map((a) => [a.appId, a]));
  const rules = loadAccountRules(config);
  // Every account whose rules answer with `ai` has an endpoint and a model, or the start stops here.
  const aiSettings = aiAccounts(config, rules);
  const handler = config.handler ? await loadHandler(config.handler) : undefined;

  const registry = options.registry ?? new Registry();
  collectDefaultMetrics({ register: registry });
  const metrics = new WorkerMetrics(registry);

  const connection = createRedis(config.redis, 'worker', logger);
  const redis = createRedis(config.redis, 'client', logger);
  const http = new WeChatHttp({ baseUrl: config.api.base, proxy: config.api.proxy });
  const tokens = new TokenManager({
    redis,
    http,
    accounts: config.accounts,
    source: config.api.tokenSource,
    logger,
    onRequest: (appId, result) => metrics.tokenRequests.inc({ app_id: appId, result }),
    ...options.tokenOptions,
  });
  const wechat = new WeChatClient(http, tokens, redis);
  // Every shard is consumed: its inbound jobs, and the outbound jobs they create on the same (user's) shard.
  // WORKER_CONCURRENCY is the process's budget, split over the shards.
  const keys = keyspaceOf(connection);
  const shards = keys.allShards();
  const concurrency = Math.max(1, Math.ceil(config.worker.concurrency / shards.length));
  const workerOptions = (shard: number) => ({
    connection,
    prefix: keys.queuePrefix(shard),
    concurrency,
    lockDuration: config.worker.lockMs,
    stalledInterval: config.worker.lockMs,
    maxStalledCount: 2,
    telemetry: queueTelemetry(), // while tracing is on: each job's `process` span continues its producer's trace
  });
  /** A shard's worker for queue `name`; while tracing is on, its jobs' spans say whose message they carry. */
  const tracedWorker = <D, R>(name: string, processor: (job: Job<D>, token?: string) => Promise<R>, shard: number) =>
    new Worker<D, R>(name, traceJob(name, processor), workerOptions(shard));
  const handoff: WorkerHandoff = {
    accounts: handoffAccounts(config, rules),
    state: new Handoffs({
      redis,
      idleMs: config.handoff.idleMs,
      logger,
      onChange: (change, appId, reason) => metrics.handoffs.inc({ app_id: appId, change, reason }),
    }),
  };
  // Idle closes are noticed within half the timeout (at most 15 s late) and counted once across workers.
  const stopSweeper = startHandoffSweeper(handoff, Math.min(15_000, Math.max(250, config.handoff.idleMs / 2)), logger);
  // The AI context is kept for the accounts that answer with the model (and AI_CONTEXT_ENTRIES > 0).
  const conversations = new Conversations(redis, {
    timeline: config.timeline,
    context: { ...config.ai.context, accounts: new Set(aiSettings.keys()) },
  });
  const ai = aiParts(aiSettings, config.ai, redis, http, wechat);
  // Subscribe and template messages: outbound jobs named `notify`, with the user's grants (processors/notify.ts).
  const notify = notificationProcessor({
    notify: new NotifyClient(http, wechat),
    conversations,
    redis,
    accounts,
    outcomes: metrics.notifications,
    logger,
  });
  const outbounds = shards.map((shard) => openQueue(OUTBOUND_QUEUE, connection, shard));
  // A user's jobs all live on the user's shard: each shard's workers see their users' order through its queues.
  const inboundViews = shards.map((shard) => openQueue(INBOUND_QUEUE, redis, shard));
  const workers = shards.flatMap((shard) => {
    const outbound = outbounds[shard] as (typeof outbounds)[number];
    // Users' send windows, the order of their messages, their timelines and typing (processors/conversation.ts).
    const conversation = conversationHooks({
      conversations,
      inbound: inboundViews[shard] as (typeof inboundViews)[number],
      outbound,
      client: wechat,
      logger,
      typingAfterMs: config.worker.typingAfterMs,
    });
    const sendReplies = replySender({ client: wechat, redis, logger, metrics, conversation });
    const aiReplies =
      ai &&
      new AiReplier({
        ...ai,
        conversations,
        conversation,
        sendReplies,
        client: wechat,
        handoff,
        metrics: metrics.ai,
        logger,
      });
    const inbound = tracedWorker<InboundJobData, InboundResult>(
      INBOUND_QUEUE,
      inboundProcessor({
        accounts,
        rules,
        handler,
        outbound,
        client: wechat,
        logger,
        sendReplies,
        outboundJobOptions: options.outboundJobOptions,
        conversation,
        handoff,
        ai: aiReplies,
      }),
      shard,
    );
    const send = outboundProcessor(sendReplies, accounts, handoff, (data, release) =>
      conversation.release(data.appId, data.touser, release),
    );
    const sender = tracedWorker<OutboundJobData, unknown>(
      OUTBOUND_QUEUE,
      (job, token) => (job.name === NOTIFY_JOB ? notify(job, token) : send(job, token)),
      shard,
    );
    return [
      [INBOUND_QUEUE, inbound],
      [OUTBOUND_QUEUE, sender],
    ] as const;
  });

  for (const [name, worker] of workers) {
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
          msgKey: (job?.data as { msgKey?: string } | undefined)?.msgKey,
          attempt: job?.attemptsMade,
          reason: error.message,
        },
        final ? 'job failed' : 'job will be retried',
      );
    });
  }

  let server: FastifyInstance | undefined;
  let metricsUrl: string | undefined;
  if (config.worker.metrics) {
    server = Fastify({ logController: new LogController({ disableRequestLogging: true }) });
    server.get('/healthz', async () => ({ status: workers.every(([, w]) => w.isRunning()) ? 'ok' : 'stopping' }));
    server.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
    await server.listen(config.worker.metrics);
    // The address the socket is really bound to (not the one asked for): the log line must not mislead.
    const bound = server.server.address() as AddressInfo;
    metricsUrl = `http://${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`;
  }
  logger.info(
    {
      accounts: [...accounts.keys()],
      concurrency: config.worker.concurrency,
      shards: shards.length,
      handler: Boolean(handler),
      ai: [...aiSettings.keys()],
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
      await Promise.all(workers.map(([, w]) => w.close()));
      await server?.close();
      await Promise.all([...outbounds, ...inboundViews].map((q) => q.close()));
      tokens.close();
      await http.close();
      await Promise.all([connection.quit(), redis.quit()]).catch(() => undefined);
    },
  };
}
