import type { Config } from '@wx-kf/shared/config';
import type { Logger } from '@wx-kf/shared/log';
import { INBOUND_QUEUE, openShardQueues } from '@wx-kf/shared/queue';
import { createRedis } from '@wx-kf/shared/redis';
import Fastify, { type FastifyInstance, LogController } from 'fastify';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { buildApp } from './app.js';

export interface RunningIngress {
  app: FastifyInstance;
  url: string;
  registry: Registry;
  /** Stops accepting, finishes in-flight pushes, then closes Redis. */
  close(): Promise<void>;
}

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
