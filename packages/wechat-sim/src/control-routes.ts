import { WINDOW_GRANTS, type WindowTrigger } from '@wx-kf/shared/conversation';
import type { FastifyInstance } from 'fastify';
import { ok } from './answers.js';
import { isFaultRule, isLatencyRule } from './faults.js';
import { parseJsonBody, stringParam } from './json-body.js';
import type { Simulator } from './server.js';

/** A user action that opens a send window, by WINDOW_GRANTS's names. */
const isWindowTrigger = (name: unknown): name is WindowTrigger =>
  typeof name === 'string' && Object.hasOwn(WINDOW_GRANTS, name);

/** Inspection and control under `/__sim/` (never part of WeChat's API). */
export function controlRoutes(app: FastifyInstance, sim: Simulator): void {
  const { state } = sim;
  app.get('/__sim/state', async () => ({
    accounts: [...state.accounts.values()].map(({ appId, type }) => ({ appId, type })),
    tokenRequests: Object.fromEntries(state.tokenRequests),
    messages: state.messages.length,
    typing: state.typing.length,
    media: state.media.size,
    modelCalls: sim.model.calls.length,
    wecom: { corps: [...sim.wecom.corps.keys()], ...sim.wecom.stats() },
  }));
  app.get('/__sim/messages', async (req) =>
    state.messagesFor(stringParam(req.query, 'appId'), stringParam(req.query, 'touser')),
  );
  app.post('/__sim/reset', async () => {
    sim.reset();
    return ok;
  });
  app.post('/__sim/faults', async (req, reply) => {
    const rule = parseJsonBody(req.body);
    if (typeof rule?.path !== 'string') return reply.code(400).send({ error: 'a fault rule needs a path' });
    if (!isFaultRule(rule)) return reply.code(400).send({ error: 'a fault rule holds faults as documented' });
    sim.fail(rule);
    return ok;
  });
  app.post('/__sim/latency', async (req, reply) => {
    const rule = parseJsonBody(req.body);
    if (!isLatencyRule(rule))
      return reply.code(400).send({ error: 'a latency rule is a JSON object of the documented fields' });
    sim.slow(rule);
    return ok;
  });
  app.post('/__sim/users/activity', async (req, reply) => {
    const body = parseJsonBody(req.body);
    if (typeof body?.appId !== 'string' || typeof body.openid !== 'string') {
      return reply.code(400).send({ error: 'appId and openid are required' });
    }
    state.userActed(body.appId, body.openid, isWindowTrigger(body.action) ? body.action : 'message');
    return ok;
  });
  app.post('/__sim/accounts/:appId/invalidate-tokens', async (req) => {
    state.invalidateTokens(stringParam(req.params, 'appId') ?? '');
    return ok;
  });
}
