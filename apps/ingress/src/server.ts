import type { Config } from '@wx-kf/shared/config';
import type { Logger } from '@wx-kf/shared/log';
import { INBOUND_QUEUE, openShardQueues } from '@wx-kf/shared/queue';
import { createRedis, whenWritable } from '@wx-kf/shared/redis';
import Fastify, { type FastifyInstance, LogController } from 'fastify';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { buildApp } from './app.js';
import { withTimeout } from './push-store.js';

export interface RunningIngress {
  app: FastifyInstance;
  url: string;
  registry: Registry;
  /** Stops accepting, finishes in-flight pushes, then closes Redis. */
  close(): Promise<void>;
}

const START_WAIT_MS = 5000;

/** Starts the ingress listener with its own producer connection to Redis. */
export async function startIngress(
  config: Config,
  logger: Logger,
  options: { registry?: Registry } = {},
): Promise<RunningIngress> {
  const redis = createRedis(config.redis, 'producer', logger);
  const queues = openShardQueues(INBOUND_QUEUE, redis);
  const registry = options.registry ?? new Registry();
  const app = buildApp({ config, queue: queues, redis, logger, registry, durability: config.redis.durability });
  // Listening only once Redis takes writes: the producer connection fails fast instead of queueing, so a push
  // (or a load balancer's /readyz) arriving while it still connects would be answered 503. A Redis that is down
  // at start is waited for a few seconds; then the ingress listens anyway, /readyz answering 503 until it is up.
  await withTimeout(whenWritable(redis), START_WAIT_MS).catch(() =>
    logger.warn({ waitedMs: START_WAIT_MS }, 'redis not reachable yet: /readyz answers 503 until it is'),
  );
  try {
    await app.listen({ host: config.ingress.host, port: config.ingress.port });
  } catch (error) {
    redis.disconnect();
    throw error;
  }
  const address = app.server.address();
  const { host, metrics: metricsAt } = config.ingress;
  const port = typeof address === 'object' && address ? address.port : config.ingress.port;
  const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
  const metrics = metricsAt ? await metricsListener(registry, metricsAt) : undefined;
  logger.info(
    {
      url,
      accounts: config.accounts.map((a) => a.appId),
      metricsUrl: metrics?.listeningOrigin,
      redis: config.redis.kind,
      shards: config.redis.shards,
      durability: config.redis.durability,
    },
    'ingress listening',
  );
  return {
    app,
    url,
    registry,
    close: async () => {
      await metrics?.close();
      await app.close();
      await Promise.all(queues.map((q) => q.close()));
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/** The ingress's own `/metrics` (with process metrics) and `/healthz`, apart from the public port. */
async function metricsListener(registry: Registry, at: { host: string; port: number }): Promise<FastifyInstance> {
  const processMetrics = new Registry();
  collectDefaultMetrics({ register: processMetrics });
  const all = Registry.merge([registry, processMetrics]);
  const server = Fastify({ logController: new LogController({ disableRequestLogging: true }) });
  server.get('/healthz', async () => ({ status: 'ok' }));
  server.get('/metrics', async (_req, reply) => reply.type(all.contentType).send(await all.metrics()));
  await server.listen(at);
  return server;
}
