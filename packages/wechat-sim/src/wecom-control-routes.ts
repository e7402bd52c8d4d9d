import type { FastifyInstance, FastifyReply } from 'fastify';
import { ok } from './answers.js';
import { isRecord, jsonFields, stringField, stringParam } from './json-body.js';
import type { WeComState, WeComTarget } from './wecom-state.js';

/** The customer a control call names when its body names none. */
export const DEFAULT_EXTERNAL_USER = 'wm_sim_customer_0001';

const numberOr = (value: unknown, fallback: number) => (typeof value === 'number' ? value : fallback);
const optionalString = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);

/** The customer a body names (defaults: the first corp, its first kf account), or undefined after answering 400. */
async function targetOf(
  wecom: WeComState,
  body: Record<string, unknown>,
  reply: FastifyReply,
): Promise<WeComTarget | undefined> {
  const corp = wecom.corps.get(stringField(body.corpId)) ?? [...wecom.corps.values()][0];
  const openKfId = optionalString(body.openKfId) ?? corp?.kfAccounts[0]?.openKfId;
  if (!corp || !openKfId || (body.corpId !== undefined && corp.corpId !== body.corpId)) {
    await reply.code(400).send({ error: 'no such corp, or it has no kf account' });
    return undefined;
  }
  return {
    corpId: corp.corpId,
    openKfId,
    externalUserId: optionalString(body.externalUserId) ?? DEFAULT_EXTERNAL_USER,
  };
}

/**
 * Control and inspection of the WeCom fake under `/__sim/wecom/` (JSON bodies; never part of WeCom's API), for
 * tests and tools out of process. A body's corpId defaults to the first corp, openKfId to that corp's first kf
 * account, externalUserId to DEFAULT_EXTERNAL_USER. Each route that adds to a log answers a fresh callback
 * Token too, the one WeCom's notice about it would carry (wecom-push.ts sends that notice).
 */
export function wecomControlRoutes(app: FastifyInstance, wecom: WeComState): void {
  const target = (body: Record<string, unknown>, reply: FastifyReply) => targetOf(wecom, body, reply);
  /** A POST route that adds to a log, answering what `add` returns and a fresh Token. */
  const adds = (path: string, add: (t: WeComTarget, body: Record<string, unknown>) => object) =>
    app.post(`/__sim/wecom/${path}`, async (req, reply) => {
      const body = jsonFields(req);
      const t = await target(body, reply);
      if (!t) return reply;
      return { ...add(t, body), token: wecom.issueToken(t.corpId) };
    });

  adds('customer-message', (t, body) => ({
    item: wecom.customerMessage({
      ...t,
      ...(optionalString(body.content) ? { content: stringField(body.content) } : {}),
      ...(optionalString(body.mediaId) ? { mediaId: stringField(body.mediaId) } : {}),
      ...(typeof body.sendTime === 'number' ? { sendTime: body.sendTime } : {}),
    }),
  }));
  adds('customer-messages', (t, body) => {
    const users = Array.isArray(body.externalUserIds) ? body.externalUserIds.filter((u) => typeof u === 'string') : [];
    const items = wecom.customerMessages(numberOr(body.n, 1), {
      ...t,
      externalUserIds: users.length ? users : [t.externalUserId],
    });
    return { count: items.length, first: items[0]?.msgid, last: items.at(-1)?.msgid };
  });
  adds('history', (t, body) => ({
    items: wecom.history({ ...t, daysAgo: numberOr(body.daysAgo, 1), count: numberOr(body.count, 1) }),
  }));
  adds('enter-session', (t, body) => wecom.enterSession({ ...t, scene: stringField(body.scene) }));
  adds('agent-message', (t, body) => ({
    item: wecom.agentMessage({
      ...t,
      content: stringField(body.content) || 'hello from a servicer',
      servicer: optionalString(body.servicer),
    }),
  }));
  adds('agent-takes', (t, body) => ({
    item: wecom.agentTakes(t.corpId, t.openKfId, t.externalUserId, optionalString(body.servicer)),
  }));
  adds('agent-ends', (t) => ({ item: wecom.agentEnds(t.corpId, t.openKfId, t.externalUserId) }));
  adds('send-failed', (t, body) => ({
    item: wecom.sendFailed(
      t.corpId,
      t.openKfId,
      t.externalUserId,
      stringField(body.failMsgid),
      numberOr(body.failType, 0),
    ),
  }));
  adds('user-recall', (t, body) => ({
    item: wecom.userRecalled(t.corpId, t.openKfId, t.externalUserId, stringField(body.recallMsgid)),
  }));
  inspectionRoutes(app, wecom);
}

/** Tokens, and what tests read back: sessions, sends, counters, trans calls, corps. */
function inspectionRoutes(app: FastifyInstance, wecom: WeComState): void {
  const target = (body: Record<string, unknown>, reply: FastifyReply) => targetOf(wecom, body, reply);
  app.post('/__sim/wecom/token', async (req, reply) => {
    const body = jsonFields(req);
    const t = await target(body, reply);
    return t ? { token: wecom.issueToken(t.corpId, numberOr(body.ageMs, 0)) } : reply;
  });
  app.post('/__sim/wecom/expire-tokens', async (req, reply) => {
    const t = await target(jsonFields(req), reply);
    if (!t) return reply;
    wecom.expireTokens(t.corpId);
    return ok;
  });
  app.get('/__sim/wecom/state', async (req, reply) => {
    const t = await target(isRecord(req.query) ? req.query : {}, reply);
    return t ? wecom.state(t.corpId, t.openKfId, t.externalUserId) : reply;
  });
  app.get('/__sim/wecom/sent', async (req) =>
    wecom.sentTo(stringParam(req.query, 'corpId'), stringParam(req.query, 'touser')),
  );
  app.get('/__sim/wecom/stats', async () => wecom.stats());
  app.get('/__sim/wecom/trans', async () => wecom.transCalls);
  app.get('/__sim/wecom/corps', async () =>
    [...wecom.corps.values()].map(({ corpId, kfAccounts, servicers }) => ({ corpId, kfAccounts, servicers })),
  );
}
