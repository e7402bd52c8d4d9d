import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { KfOperations } from '../kf.js';
import {
  accountSchema,
  addAgentSchema,
  agentSchema,
  agentSessionsSchema,
  closeSessionSchema,
  code2sessionSchema,
  inviteAgentSchema,
  openSessionSchema,
  showSessionSchema,
  updateAgentSchema,
} from './schemas.js';

/** An agent's avatar: a JPEG of at most 5 MB, and room for the request around it. */
const AVATAR_BODY_LIMIT = 5 * 1024 * 1024 + 1024;

/**
 * Official Account agents and sessions, and code2session, under `/api/v1/` (for the business systems that route
 * chats). Refusals are thrown by the operations: ours answer 400, WeChat's the status of its errcode.
 */
export const kfRoutes: FastifyPluginAsync<{ ops: KfOperations }> = async (fastify, { ops }) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  // Images for the avatar route arrive as bytes.
  app.addContentTypeParser(['image/jpeg', 'application/octet-stream'], { parseAs: 'buffer' }, (_req, body, done) =>
    done(null, body),
  );

  app.get('/api/v1/agents/:appId', { schema: accountSchema }, async (req) => ({
    agents: await ops.agents(req.params.appId),
  }));
  app.get('/api/v1/agents/:appId/online', { schema: accountSchema }, async (req) => ({
    agents: await ops.onlineAgents(req.params.appId),
  }));
  app.post('/api/v1/agents/:appId', { schema: addAgentSchema }, async (req, reply) => {
    await ops.addAgent(req.params.appId, req.body.agent, req.body.nickname);
    return reply.code(201).send({ agent: req.body.agent });
  });
  app.patch('/api/v1/agents/:appId/:agent', { schema: updateAgentSchema }, async (req) => {
    await ops.updateAgent(req.params.appId, req.params.agent, req.body.nickname);
    return { agent: req.params.agent };
  });
  app.delete('/api/v1/agents/:appId/:agent', { schema: agentSchema }, async (req) => {
    await ops.deleteAgent(req.params.appId, req.params.agent);
    return { agent: req.params.agent, deleted: true };
  });
  app.put('/api/v1/agents/:appId/:agent/avatar', { schema: agentSchema, bodyLimit: AVATAR_BODY_LIMIT }, async (req) => {
    const image = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    await ops.agentAvatar(req.params.appId, req.params.agent, image);
    return { agent: req.params.agent };
  });
  app.post('/api/v1/agents/:appId/:agent/invite', { schema: inviteAgentSchema }, async (req) => {
    await ops.inviteAgent(req.params.appId, req.params.agent, req.body.wechatId);
    return { agent: req.params.agent, invited: req.body.wechatId };
  });

  app.get('/api/v1/sessions/:appId/waiting', { schema: accountSchema }, (req) => ops.waiting(req.params.appId));
  app.get('/api/v1/sessions/:appId', { schema: agentSessionsSchema }, async (req) => ({
    sessions: await ops.agentSessions(req.params.appId, req.query.agent),
  }));
  app.get('/api/v1/sessions/:appId/:openid', { schema: showSessionSchema }, (req) =>
    ops.showSession(req.params.appId, req.params.openid, req.query.open_kfid),
  );
  app.put('/api/v1/sessions/:appId/:openid', { schema: openSessionSchema }, (req) =>
    ops.openSession(req.params.appId, req.params.openid, req.body?.agent, req.body?.open_kfid),
  );
  app.delete('/api/v1/sessions/:appId/:openid', { schema: closeSessionSchema }, (req) =>
    ops.closeSession(req.params.appId, req.params.openid, req.query.agent, req.query.open_kfid),
  );

  app.post('/api/v1/code2session', { bodyLimit: 4096, schema: code2sessionSchema }, (req) =>
    ops.code2session(req.body.appId, req.body.code, req.body.includeSessionKey),
  );
};
