import type { Conversations } from '@wx-kf/shared/conversation';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { UnknownAccount } from '../refusal.js';
import { userSchema } from './schemas.js';

export interface UserRoutesOptions {
  conversations: Conversations;
  /** The configured accounts: another appId is a 404. */
  appIds: ReadonlySet<string>;
}

/** `GET /api/v1/users/:appId/:openid`: the user's send window and timeline (the `pnpm queues user` JSON). */
export const userRoutes: FastifyPluginAsync<UserRoutesOptions> = async (fastify, { conversations, appIds }) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  app.get('/api/v1/users/:appId/:openid', { schema: userSchema }, async (req) => {
    const { appId, openid } = req.params;
    if (!appIds.has(appId)) throw new UnknownAccount(404);
    return conversations.view(appId, openid);
  });
};
