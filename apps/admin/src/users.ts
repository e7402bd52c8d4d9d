import type { Conversations } from '@wx-kf/shared/conversation';
import { OPENID_PATTERN } from '@wx-kf/shared/wechat';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { Gauge, type Registry } from 'prom-client';
import { z } from 'zod';

/** An OpenID in a request: the send API's `touser`, the users and kf routes' `:openid`. */
export const openidSchema = z
  .string()
  .regex(OPENID_PATTERN, 'must be an OpenID: 1 to 64 characters of A-Z a-z 0-9 _ -');

const params = z.object({ appId: z.string().max(64), openid: openidSchema });

/** `GET /api/v1/users/:appId/:openid`: the user's send window and timeline (the `pnpm queues user` JSON). */
export function userRoutes(
  app: FastifyInstance,
  options: {
    conversations: Conversations;
    appIds: Set<string>;
    gate: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
  },
): void {
  app
    .withTypeProvider<ZodTypeProvider>()
    .get('/api/v1/users/:appId/:openid', { onRequest: options.gate, schema: { params } }, async (req, reply) => {
      const { appId, openid } = req.params;
      if (!options.appIds.has(appId)) {
        return reply.code(404).send({ error: 'account', message: 'appId must be a configured account' });
      }
      return options.conversations.view(appId, openid);
    });
}

/**
 * Why the send API must refuse `count` messages to this user now (409), or undefined when the window allows
 * them: refusing the whole call beats sending its first messages and failing the rest.
 */
export async function windowRefusal(
  conversations: Conversations,
  appId: string,
  touser: string,
  count: number,
): Promise<string | undefined> {
  const window = await conversations.window(appId, touser);
  if (window.refusal) return window.refusal;
  if (window.left < count) return `only ${window.left} send(s) left in the user's window, ${count} asked`;
  return undefined;
}

/** `wxkf_open_windows`: users per account whose send window has not ended, read from Redis at each scrape. */
export function windowMetrics(registry: Registry, conversations: Conversations, appIds: string[]): void {
  new Gauge({
    name: 'wxkf_open_windows',
    help: 'Users with a send window that has not ended, per account (sampled from Redis at each scrape)',
    labelNames: ['app_id'],
    registers: [registry],
    async collect() {
      for (const appId of appIds) this.set({ app_id: appId }, await conversations.openWindowCount(appId));
    },
  });
}
