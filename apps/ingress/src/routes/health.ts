import type { RedisClient } from '@wx-kf/shared/redis';
import type { FastifyPluginAsync } from 'fastify';
import { withTimeout } from '../push-store.js';

/**
 * `/healthz`: the process answers; `/readyz`: its Redis connection can take writes now (a load balancer's readiness
 * check): 503 while it is still connecting or reconnecting, when a push would be refused too.
 */
export const healthRoutes: FastifyPluginAsync<{ redis: RedisClient }> = async (app, { redis }) => {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    try {
      if (redis.status !== 'ready') throw new Error('not connected');
      await withTimeout(redis.ping(), 1000);
      return { status: 'ready' };
    } catch {
      return reply.code(503).send({ status: 'redis unavailable' });
    }
  });
};
