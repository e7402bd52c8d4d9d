import type { AccountConfig, Config } from '@wx-kf/shared/config';
import { Conversations } from '@wx-kf/shared/conversation';
import type { Logger } from '@wx-kf/shared/log';
import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';
import { IdempotencyKeys } from './idempotency.js';
import { KfOperations } from './kf.js';
import { adminRegistry } from './metrics.js';
import { Notifications } from './notifications.js';
import { ADMIN_LIMITS, AdminAuth } from './plugins/auth.js';
import { adminErrorHandler, notFound } from './plugins/error-handler.js';
import type { Queues } from './queues.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { kfRoutes } from './routes/kf.js';
import { metricsRoutes } from './routes/metrics.js';
import { notificationRoutes } from './routes/notifications.js';
import { sendRoutes } from './routes/send.js';
import { userRoutes } from './routes/users.js';
import { usersPageRoutes } from './routes/users-page.js';
import { ActionTokens } from './users-page/action-tokens.js';

export interface AdminAppOptions {
  config: Config;
  logger: Logger;
  /** The queues of every shard, on the connection the admin reads and writes with. */
  queues: Queues;
  /** Registries of the process hosting the listener (ingress and/or worker metrics), served at /metrics. */
  registries?: Registry[] | undefined;
  /** Overrides of ADMIN_LIMITS (tests). */
  limits?: Partial<typeof ADMIN_LIMITS> | undefined;
}

/**
 * The admin listener as a plugin: bull-board and /metrics behind basic auth, the API under `/api/v1/` behind the
 * bearer key, and one error handler answering every refusal as `{ error, message }`. Meant for loopback or a
 * private network, never the public port.
 */
export const adminApp: FastifyPluginAsync<AdminAppOptions> = async (app, options) => {
  const { config, logger, queues } = options;
  const accounts = new Map<string, AccountConfig>(config.accounts.map((a) => [a.appId, a]));
  const auth = new AdminAuth({
    credentials: config.admin,
    limits: { ...ADMIN_LIMITS, ...options.limits },
    logger,
  });
  const redis = queues.connection;
  const conversations = new Conversations(redis, { timeline: config.timeline });
  const { registry, handoffs, refresh } = adminRegistry(options.registries ?? [], queues, conversations, [
    ...accounts.keys(),
  ]);
  // Where the queue CLI's handoff counts stand now: only what it counts from here on is added (not awaited).
  refresh().catch(() => undefined);
  const kf = new KfOperations(config, redis, logger, (change, appId, reason) =>
    handoffs.inc({ app_id: appId, change, reason }),
  );
  app.addHook('onClose', () => kf.close());
  const notifications = new Notifications(config, queues, conversations, logger);
  app.addHook('onClose', () => notifications.close());
  app.setErrorHandler(adminErrorHandler);
  app.setNotFoundHandler(notFound);

  await app.register(async (operators) => {
    await auth.requireBasicAuth(operators);
    await operators.register(dashboardRoutes, { queues });
    await operators.register(metricsRoutes, { registry, refresh });
    // The confirm forms' key comes from the admin password (AdminAuth has refused to start without one).
    const tokens = new ActionTokens(config.admin.password ?? '');
    await operators.register(usersPageRoutes, { accounts, conversations, queues, kf, tokens });
  });
  await app.register(async (api) => {
    auth.requireApiKey(api);
    const idempotency = new IdempotencyKeys(redis, queues.keys);
    await api.register(sendRoutes, { accounts, queues, conversations, idempotency, kf, notifications, logger });
    await api.register(notificationRoutes, { accounts, notifications, idempotency });
    await api.register(userRoutes, { conversations, redis, appIds: new Set(accounts.keys()) });
    await api.register(kfRoutes, { ops: kf });
  });
};
