import { createServer } from 'node:http';
import underPressure from '@fastify/under-pressure';
import type { Config } from '@wx-kf/shared/config';
import { Conversations } from '@wx-kf/shared/conversation';
import { Handoffs, handoffAccounts } from '@wx-kf/shared/handoff';
import type { Logger } from '@wx-kf/shared/log';
import type { InboundJobData } from '@wx-kf/shared/queue';
import { keyspaceOf, type RedisClient } from '@wx-kf/shared/redis';
import { loadAccountRules, type ReplyRules } from '@wx-kf/shared/rules';
import type { Queue } from 'bullmq';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { Registry } from 'prom-client';
import { IngressMetrics } from './metrics.js';
import { pushStore } from './push-store.js';
import { type IngressAccount, ingressAccount } from './receive.js';
import { bounded } from './refusal.js';
import { healthRoutes } from './routes/health.js';
import { wechatRoutes } from './routes/wechat.js';
import { signatureBinder } from './signature-binding.js';

export interface IngressOptions {
  config: Pick<Config, 'accounts' | 'replyRulesFile'> & {
    ingress: Pick<Config['ingress'], 'timestampToleranceSeconds'>;
  } & Partial<Pick<Config, 'timeline' | 'handler' | 'handoff'>>;
  /** The inbound queue, or one per shard (index = shard), on a producer connection (fails fast while Redis is down). */
  queue: Queue<InboundJobData> | readonly Queue<InboundJobData>[];
  redis: RedisClient;
  /** `replicated`: answer `success` only once a replica has the push (REDIS_DURABILITY). Default `local`. */
  durability?: 'local' | 'replicated';
  logger: Logger;
  registry?: Registry;
  /** Longest wait for Redis before answering 503 (WeChat gives up after 5 s). Default 2500. */
  enqueueTimeoutMs?: number;
  /** Largest push body accepted. Default DEFAULT_BODY_LIMIT. */
  bodyLimit?: number;
  /** The clock timestamps are checked against, in ms (tests of recorded pushes set their own). */
  now?: () => number;
}

/** WeChat's pushes are a few kB; the largest (a mass-send result with its copyright checks) stay under 20 kB. */
const DEFAULT_BODY_LIMIT = 64 * 1024;

/** A request whose headers and body have not arrived by then is answered 408 (WeChat waits 5 s in all). */
const REQUEST_TIMEOUT_MS = 4000;

/** The ingress as a Fastify instance: tests `inject` into it, `server.ts` listens with it. */
export function buildApp(options: IngressOptions): FastifyInstance {
  const { config, redis, logger } = options;
  const queues: readonly Queue<InboundJobData>[] = 'add' in options.queue ? [options.queue] : options.queue;
  const { shards } = keyspaceOf(redis);
  if (queues.length !== shards) throw new Error(`${queues.length} inbound queue(s) for ${shards} shard(s)`);
  const accounts = new Map<string, IngressAccount>(config.accounts.map((a) => [a.appId, ingressAccount(a)]));
  // Only transfer rules matter here (the worker decides replies): only accounts that have one consult rules.
  const allRules = loadAccountRules(config);
  const transferRules = new Map<string, ReplyRules>([...allRules].filter(([, r]) => r.transfers));
  // Only accounts that use handoff read its state (the model may hand a user over): the others pay no Redis read.
  const handoffIds = handoffAccounts(config, allRules);
  const metrics = new IngressMetrics(options.registry ?? new Registry());
  for (const a of config.accounts) {
    logger.info({ appId: a.appId, security: a.security, aesKey: Boolean(a.aesKey) }, `account accepts ${accepts(a)}`);
  }

  const app = ingressInstance(logger, options.bodyLimit ?? DEFAULT_BODY_LIMIT);
  app.setErrorHandler(refuseRequest(metrics));
  app.setNotFoundHandler((_req, reply) => reply.code(404).send({ error: 'not_found', message: 'no such route' }));

  // Every stored push grants its user's send window, takes its place in their order and enters their timeline.
  const conversations = new Conversations(redis, { timeline: config.timeline });
  const handoffs = new Handoffs({
    redis,
    idleMs: config.handoff?.idleMs ?? 30 * 60_000,
    logger,
    onChange: (change, appId, reason) => metrics.handoffs.inc({ app_id: appId, change, reason }),
  });
  const bind = signatureBinder(redis, config.ingress.timestampToleranceSeconds);

  app.register(healthRoutes, { redis });
  app.register(wechatRoutes, {
    config,
    accounts,
    transferRules,
    store: pushStore({
      queues,
      redis,
      durability: options.durability,
      timeoutMs: options.enqueueTimeoutMs ?? 2500,
      bind,
      ingest: ({ data, opts }, { handoff }) => {
        // The route stores pushes of its accounts only.
        const account = accounts.get(data.appId);
        if (!account) throw new Error(`no account ${data.appId}`);
        const ingestOptions = {
          receivedAt: data.receivedAt,
          handoffIdleMs: handoff ? handoffs.idleMs : 0,
          transferred: data.transferred,
        };
        return conversations.ingest(data.appId, account.config.type, opts.jobId, data.message, ingestOptions);
      },
    }),
    bind,
    now: options.now ?? Date.now,
    metrics,
    logger,
    handoff: { accounts: handoffIds, state: handoffs },
  });
  return app;
}

/** What an account's pushes may be, for its start-up line. */
function accepts(account: Config['accounts'][number]): string {
  if (account.type === 'wecom-kf') return "WeCom's encrypted callbacks (its pull notices)";
  return account.security === 'safe' ? 'encrypted pushes only (compat or safe mode)' : 'plaintext and encrypted';
}

/** The Fastify instance: timeouts, body as bytes whatever its Content-Type, load shedding, zod compilers. */
function ingressInstance(logger: Logger, bodyLimit: number): FastifyInstance {
  const loggerInstance: FastifyBaseLogger = logger;
  const app = Fastify({
    loggerInstance,
    // One line per push is logged by the route itself; no per-request child logger on the hot path.
    childLoggerFactory: (parent) => parent,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    requestTimeout: REQUEST_TIMEOUT_MS,
    return503OnClosing: true,
    // Node checks request timeouts only every `connectionsCheckingInterval` (30 s by default): a client that
    // stalls mid-body held its connection for up to a minute. Checked each second, 4 s means 4 to 5 s.
    serverFactory: (handler) =>
      createServer(
        { requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS, connectionsCheckingInterval: 1000 },
        handler,
      ),
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  // Whatever the Content-Type says, the body is read as bytes; the route checks they are UTF-8 and decides
  // the format from the body itself.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.register(underPressure, { maxEventLoopDelay: 1000, retryAfter: 1, exposeStatusRoute: false });
  return app;
}

/** Refusals before a push is read (schema, size, load shedding), counted and logged. */
function refuseRequest(metrics: IngressMetrics) {
  return (error: { statusCode?: number; code?: string; message: string }, req: FastifyRequest, reply: FastifyReply) => {
    // 4xx as they are; 503 (load shedding, closing) too, so WeChat retries; anything else is ours: 500.
    const status = error.statusCode && (error.statusCode < 500 || error.statusCode === 503) ? error.statusCode : 500;
    const reason = bounded(error.message);
    metrics.refused.inc({ status: String(status) });
    req.log.warn({ route: req.routeOptions.url, status, code: error.code, reason }, 'request refused');
    return reply.code(status).send({ error: error.code ?? 'error', message: reason });
  };
}
