import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import basicAuth from '@fastify/basic-auth';
import {
  type AccountConfig,
  type Config,
  createRedis,
  type Logger,
  MessageFormatError,
  OUTBOUND_JOB_OPTIONS,
  type OutboundJobData,
  safeEqual,
  validateReply,
} from '@wx-kf/shared';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { Queues } from './queues.js';

export interface AdminOptions {
  /** Registries of the process hosting the listener (ingress and/or worker metrics), served at /metrics. */
  registries?: Registry[];
}

export interface RunningAdmin {
  app: FastifyInstance;
  url: string;
  close(): Promise<void>;
}

function queueMetrics(registry: Registry, queues: Queues): void {
  new Gauge({
    name: 'wxkf_queue_jobs',
    help: 'Jobs per queue and state',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      for (const [queue, counts] of Object.entries(await queues.stats())) {
        for (const [state, n] of Object.entries(counts)) if (typeof n === 'number') this.set({ queue, state }, n);
      }
    },
  });
  new Gauge({
    name: 'wxkf_queue_oldest_waiting_seconds',
    help: 'Age of the oldest waiting job per queue (alert when it grows: workers are not keeping up)',
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      for (const q of queues.all) this.set({ queue: q.name }, await queues.oldestWaitingAge(q));
    },
  });
}

/**
 * The admin listener: bull-board and /metrics behind basic auth, and `POST /api/v1/messages` behind a bearer
 * key. Meant for loopback or a private network, never the public port.
 */
export async function buildAdminApp(
  config: Config,
  logger: Logger,
  options: AdminOptions & { queues: Queues },
): Promise<FastifyInstance> {
  const { queues } = options;
  const password = config.admin.password;
  if (!password) throw new Error('the admin listener needs ADMIN_PASSWORD');
  const accounts = new Map<string, AccountConfig>(config.accounts.map((a) => [a.appId, a]));

  const own = new Registry();
  queueMetrics(own, queues);
  const hosted = options.registries ?? [];
  if (!hosted.some((r) => r.getSingleMetric('process_cpu_user_seconds_total')))
    collectDefaultMetrics({ register: own });
  const registry = Registry.merge([own, ...hosted]);

  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
  });
  await app.register(basicAuth, {
    validate: async (user, pass) => {
      // Both compared in full, in constant time, whichever is wrong.
      const ok = safeEqual(user, config.admin.user) && safeEqual(pass, password);
      if (!ok) throw new Error('wrong user or password');
    },
    authenticate: { realm: 'wx-kf admin' },
  });

  await app.register(async (secured) => {
    secured.addHook('onRequest', secured.basicAuth);
    const board = new FastifyAdapter();
    createBullBoard({
      queues: queues.all.map((q) => new BullMQAdapter(q)),
      serverAdapter: board,
      options: { uiConfig: { boardTitle: 'wx-kf queues' } },
    });
    board.setBasePath('/ui');
    await secured.register(board.registerPlugin(), { prefix: '/ui' });
    secured.get('/', async (_req, reply) => reply.redirect('/ui'));
    secured.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
  });

  app.post('/api/v1/messages', async (req, reply) => {
    const apiKey = config.admin.apiKey;
    if (!apiKey)
      return reply.code(403).send({ error: 'disabled', message: 'set ADMIN_API_KEY to enable the send API' });
    const auth = req.headers.authorization ?? '';
    if (!auth.startsWith('Bearer ') || !safeEqual(auth.slice(7), apiKey)) {
      return reply
        .code(401)
        .send({ error: 'unauthorized', message: 'a valid Authorization: Bearer <ADMIN_API_KEY> is required' });
    }
    const body = req.body as { appId?: unknown; touser?: unknown; messages?: unknown } | undefined;
    const account = typeof body?.appId === 'string' ? accounts.get(body.appId) : undefined;
    if (!account) return reply.code(400).send({ error: 'account', message: 'appId must be a configured account' });
    if (typeof body?.touser !== 'string' || body.touser === '') {
      return reply.code(400).send({ error: 'touser', message: 'touser (the OpenID) is required' });
    }
    if (!Array.isArray(body.messages) || body.messages.length === 0 || body.messages.length > 20) {
      return reply
        .code(400)
        .send({ error: 'messages', message: 'messages must be a list of 1 to 20 custom/send bodies without touser' });
    }
    let replies: OutboundJobData['replies'];
    try {
      replies = body.messages.map((m, i) => {
        try {
          return validateReply(m, account.type);
        } catch (error) {
          if (error instanceof MessageFormatError) throw new MessageFormatError(`messages.${i}: ${error.message}`);
          throw error;
        }
      });
    } catch (error) {
      if (!(error instanceof MessageFormatError)) throw error;
      return reply.code(400).send({ error: 'messages', message: error.message });
    }
    const data: OutboundJobData = {
      appId: account.appId,
      touser: body.touser,
      msgKey: `api-${Date.now()}`,
      replies,
      sent: 0,
      source: 'api',
      receivedAt: Date.now(),
    };
    const job = await queues.outbound.add('send', data, OUTBOUND_JOB_OPTIONS);
    await job.updateData({ ...data, msgKey: `api-${job.id}` });
    logger.info({ appId: account.appId, jobId: job.id, replies: replies.length }, 'send API: queued');
    return reply.code(202).send({ jobId: job.id });
  });
  return app;
}

/** Starts the admin listener on ADMIN_HOST:ADMIN_PORT; resolves undefined when ADMIN_PASSWORD is unset. */
export async function startAdmin(
  config: Config,
  logger: Logger,
  options: AdminOptions = {},
): Promise<RunningAdmin | undefined> {
  if (!config.admin.password) {
    logger.info('admin listener off (no ADMIN_PASSWORD)');
    return undefined;
  }
  const redis = createRedis(config.redisUrl, 'client', logger);
  const queues = new Queues(redis);
  const app = await buildAdminApp(config, logger, { ...options, queues });
  const url = await app.listen({ host: config.admin.host, port: config.admin.port });
  logger.info({ url }, 'admin listening');
  return {
    app,
    url,
    close: async () => {
      await app.close();
      await queues.close();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
