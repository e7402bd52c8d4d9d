import { type Conversations, forgetUser } from '@wx-kf/shared/conversation';
import type { RedisClient } from '@wx-kf/shared/redis';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { UnknownAccount } from '../refusal.js';
import { userSchema } from './schemas.js';

export interface UserRoutesOptions {
  conversations: Conversations;
  /** The connection `DELETE` erases the user's keys and jobs through. */
  redis: RedisClient;
  /** The configured accounts: another appId is a 404. */
  appIds: ReadonlySet<string>;
}

/**
 * `GET /api/v1/users/:appId/:openid`: the user's send window and timeline (the `pnpm queues user` JSON).
 * `DELETE` erases everything kept about the user (a user's right to deletion) and answers what it erased (the
 * `pnpm queues forget` JSON).
 */
export const userRoutes: FastifyPluginAsync<UserRoutesOptions> = async (fastify, { conversations, redis, appIds }) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  app.get('/api/v1/users/:appId/:openid', { schema: userSchema }, async (req) => {
    const { appId, openid } = req.params;
    if (!appIds.has(appId)) throw new UnknownAccount(404);
    return conversations.view(appId, openid);
  });
  app.delete('/api/v1/users/:appId/:openid', { schema: userSchema }, async (req) => {
    const { appId, openid } = req.params;
    if (!appIds.has(appId)) throw new UnknownAccount(404);
    const erasure = await forgetUser(redis, appId, openid);
    // Who was erased is an audit fact; nothing they said is in the line.
    req.log.info({ appId, openid, erased: erasure.erased }, 'admin: user erased');
    return erasure;
  });
};
