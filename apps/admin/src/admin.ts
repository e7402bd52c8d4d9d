import type { Config } from '@wx-kf/shared/config';
import type { Logger } from '@wx-kf/shared/log';
import { createRedis } from '@wx-kf/shared/redis';
import { serverSpans } from '@wx-kf/shared/tracing';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { type AdminAppOptions, adminApp } from './app.js';
import { Queues } from './queues.js';

export type AdminOptions = Pick<AdminAppOptions, 'registries' | 'limits'>;

export interface RunningAdmin {
  app: FastifyInstance;
  url: string;
  close(): Promise<void>;
}

/** The admin listener as a Fastify instance: tests `inject` into it, startAdmin listens with it. */
export async function buildAdminApp(
  config: Config,
  logger: Logger,
  options: AdminOptions & { queues: Queues },
): Promise<FastifyInstance> {
  const loggerInstance: FastifyBaseLogger = logger; // pino's Logger, seen as Fastify's
  const app = Fastify({
    loggerInstance,
    logController: new LogController({ disableRequestLogging: true }),
    // The client address (the API's rate, logs) from X-Forwarded-For only when it comes from these proxies.
    trustProxy: config.admin.trustProxy ?? false,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // While tracing is on: a server span per API call (a send's trace goes on in the worker that sends it).
  const traced = serverSpans((url) => url.startsWith('/api/v1/'));
  if (traced) app.addHook('onRoute', traced);
  await app.register(adminApp, { ...options, config, logger });
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
  const redis = createRedis(config.redis, 'client', logger);
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
