import type { RedisClient } from '@wx-kf/shared/redis';
import type { FastifyPluginAsync } from 'fastify';
import { withTimeout } from '../push-store.js';

/** `/healthz`: the process answers; `/readyz`: Redis answers too (a load balancer's readiness check). */
export const healthRoutes: FastifyPluginAsync<{ redis: RedisClient }> = async (app, { redis }) => {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    try {
      await withTimeout(redis.ping(), 1000);
      return { status: 'ready' };
    } catch {
      return reply.code(503).send({ status: 'redis unavailable' });
    }
  });
};
