import type { FastifyPluginAsync } from 'fastify';
import type { Redis } from 'ioredis';
import { withTimeout } from '../push-store.js';

/** `/healthz`: the process answers; `/readyz`: Redis answers too (a load balancer's readiness check). */
export const healthRoutes: FastifyPluginAsync<{ redis: Redis }> = async (app, { redis }) => {
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
