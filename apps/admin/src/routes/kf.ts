import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { describeError, type KfOperations } from '../kf.js';
import { openidSchema } from '../users.js';

export interface KfRoutesOptions {
  ops: KfOperations;
  /** The send API's gate: bearer key, failed-login and per-client rate limits. */
  gate: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
}

const appId = z.string().max(64);
const openid = openidSchema;
const agent = z.string().min(1).max(64);
const nickname = z.string().min(1).max(64);

/**
 * Official Account agents and sessions, and code2session, under `/api/v1/` behind the send API's bearer key
 * (for the business systems that route chats). WeChat's refusals answer 4xx with its errcode.
 */
export const kfRoutes: FastifyPluginAsync<KfRoutesOptions> = async (fastify, { ops, gate }) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  app.addHook('onRequest', gate);
  // Images for the avatar route arrive as bytes.
  app.addContentTypeParser(['image/jpeg', 'application/octet-stream'], { parseAs: 'buffer' }, (_req, body, done) =>
    done(null, body),
  );
  /** Runs an operation; our refusals and WeChat's answers become a status and a short JSON reason. */
  const run = async <T>(reply: FastifyReply, op: () => Promise<T>, status = 200) => {
    try {
      return reply.code(status).send(await op());
    } catch (error) {
      const described = describeError(error);
      if (!described) throw error;
      return reply.code(described.status).send(described.body);
    }
  };
  const account = { params: z.object({ appId }) };
  const oneAgent = { params: z.object({ appId, agent }) };
  const oneUser = { params: z.object({ appId, openid }) };

  app.get('/api/v1/agents/:appId', { schema: account }, (req, reply) =>
    run(reply, async () => ({ agents: await ops.agents(req.params.appId) })),
  );
  app.get('/api/v1/agents/:appId/online', { schema: account }, (req, reply) =>
    run(reply, async () => ({ agents: await ops.onlineAgents(req.params.appId) })),
  );
  app.post('/api/v1/agents/:appId', { schema: { ...account, body: z.object({ agent, nickname }) } }, (req, reply) =>
    run(
      reply,
      async () => {
        await ops.addAgent(req.params.appId, req.body.agent, req.body.nickname);
        return { agent: req.body.agent };
      },
      201,
    ),
  );
  app.patch('/api/v1/agents/:appId/:agent', { schema: { ...oneAgent, body: z.object({ nickname }) } }, (req, reply) =>
    run(reply, async () => {
      await ops.updateAgent(req.params.appId, req.params.agent, req.body.nickname);
      return { agent: req.params.agent };
    }),
  );
  app.delete('/api/v1/agents/:appId/:agent', { schema: oneAgent }, (req, reply) =>
    run(reply, async () => {
      await ops.deleteAgent(req.params.appId, req.params.agent);
      return { agent: req.params.agent, deleted: true };
    }),
  );
  app.put(
    '/api/v1/agents/:appId/:agent/avatar',
    { schema: oneAgent, bodyLimit: 5 * 1024 * 1024 + 1024 },
    (req, reply) =>
      run(reply, async () => {
        await ops.agentAvatar(
          req.params.appId,
          req.params.agent,
          Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0),
        );
        return { agent: req.params.agent };
      }),
  );
  app.post(
    '/api/v1/agents/:appId/:agent/invite',
    { schema: { ...oneAgent, body: z.object({ wechatId: z.string().min(1).max(64) }) } },
    (req, reply) =>
      run(reply, async () => {
        await ops.inviteAgent(req.params.appId, req.params.agent, req.body.wechatId);
        return { agent: req.params.agent, invited: req.body.wechatId };
      }),
  );

  app.get('/api/v1/sessions/:appId/waiting', { schema: account }, (req, reply) =>
    run(reply, () => ops.waiting(req.params.appId)),
  );
  app.get('/api/v1/sessions/:appId', { schema: { ...account, querystring: z.object({ agent }) } }, (req, reply) =>
    run(reply, async () => ({ sessions: await ops.agentSessions(req.params.appId, req.query.agent) })),
  );
  app.get('/api/v1/sessions/:appId/:openid', { schema: oneUser }, (req, reply) =>
    run(reply, () => ops.showSession(req.params.appId, req.params.openid)),
  );
  app.put(
    '/api/v1/sessions/:appId/:openid',
    { schema: { ...oneUser, body: z.object({ agent: agent.optional() }).optional() } },
    (req, reply) => run(reply, () => ops.openSession(req.params.appId, req.params.openid, req.body?.agent)),
  );
  app.delete(
    '/api/v1/sessions/:appId/:openid',
    { schema: { ...oneUser, querystring: z.object({ agent: agent.optional() }) } },
    (req, reply) => run(reply, () => ops.closeSession(req.params.appId, req.params.openid, req.query.agent)),
  );

  app.post(
    '/api/v1/code2session',
    {
      bodyLimit: 4096,
      schema: {
        body: z.object({ appId, code: z.string().min(1).max(128), includeSessionKey: z.boolean().optional() }),
      },
    },
    (req, reply) => run(reply, () => ops.code2session(req.body.appId, req.body.code, req.body.includeSessionKey)),
  );
};
