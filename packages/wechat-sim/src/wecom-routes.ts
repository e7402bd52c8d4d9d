import type { FastifyInstance } from 'fastify';
import type { CallGate } from './gate.js';
import { jsonFields, parseJsonBody, stringField, stringParam } from './json-body.js';
import { customerOf, type WeComAuthorise, type WeComCall } from './wecom-call.js';
import { wecomErr } from './wecom-errcodes.js';
import { wecomSendRoutes } from './wecom-send-routes.js';
import { isServiceState } from './wecom-sessions.js';
import type { WeComState } from './wecom-state.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * WeCom's 微信客服 API on the simulator's origin (services point WECOM_API_BASE at it): gettoken, kf/sync_msg,
 * kf/send_msg, kf/send_msg_on_event, kf/service_state/get|trans, kf/account/list. Every call passes the
 * CallGate, so fault and latency rules name these paths like WeChat's (their `appId` is the CorpID).
 */
export function wecomRoutes(app: FastifyInstance, wecom: WeComState, gate: CallGate): void {
  const authorise: WeComAuthorise = async (req, reply) => {
    const check = wecom.checkAccessToken(stringParam(req.query, 'access_token'));
    const corpId = 'corpId' in check ? check.corpId : undefined;
    if (await gate.intercept(req, reply, corpId)) return undefined;
    if ('name' in check) {
      await reply.send(wecomErr(check.name));
      return undefined;
    }
    return { corpId: check.corpId, body: parseJsonBody(req.body) };
  };

  app.get('/cgi-bin/gettoken', async (req, reply) => {
    const corpId = stringParam(req.query, 'corpid');
    if (corpId) wecom.countTokenRequest(corpId);
    if (await gate.intercept(req, reply, corpId)) return reply;
    const answer = wecom.getToken(corpId, stringParam(req.query, 'corpsecret'));
    return 'name' in answer ? wecomErr(answer.name) : { errcode: 0, errmsg: 'ok', ...answer };
  });

  app.post('/cgi-bin/kf/sync_msg', async (req, reply) => {
    const fields = jsonFields(req);
    const done = wecom.syncStarted(stringField(fields.open_kfid), fields.token !== undefined);
    try {
      const call = await authorise(req, reply);
      if (!call) return reply;
      if (fields.token === undefined && wecom.noTokenDelayMs > 0) await sleep(wecom.noTokenDelayMs);
      return syncMsg(wecom, call);
    } finally {
      done();
    }
  });

  app.post('/cgi-bin/kf/account/list', async (req, reply) => {
    const call = await authorise(req, reply);
    if (!call) return reply;
    const offset = typeof call.body?.offset === 'number' ? call.body.offset : 0;
    const limit = typeof call.body?.limit === 'number' ? call.body.limit : 100;
    if (offset < 0 || limit < 1 || limit > 100) return wecomErr('invalidParameter');
    const accounts = wecom.corps.get(call.corpId)?.kfAccounts ?? [];
    const accountList = accounts
      .slice(offset, offset + limit)
      .map((a) => ({ open_kfid: a.openKfId, name: a.name, avatar: '', manage_privilege: true }));
    return { errcode: 0, errmsg: 'ok', account_list: accountList };
  });

  serviceStateRoutes(app, wecom, authorise);
  wecomSendRoutes(app, wecom, authorise);
}

/** sync_msg's checks in WeCom's order, then one page of the log. */
function syncMsg(wecom: WeComState, { corpId, body }: WeComCall) {
  if (!body) return wecomErr('dataFormat');
  const openKfId = stringField(body.open_kfid);
  if (!wecom.kfAccount(corpId, openKfId)) return wecomErr('openKfIdNotExist');
  const limit = body.limit ?? 1000;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > 1000) {
    return wecomErr('invalidLimit');
  }
  if (body.token !== undefined && !wecom.validSyncToken(corpId, stringField(body.token))) {
    return wecomErr('invalidMsgToken');
  }
  // An empty cursor is WeCom's "from the start" as much as an absent one.
  const cursor = typeof body.cursor === 'string' && body.cursor !== '' ? body.cursor : undefined;
  if (body.cursor !== undefined && typeof body.cursor !== 'string') return wecomErr('invalidCursor');
  const page = wecom.log.page(corpId, openKfId, cursor, limit, wecom.nowSeconds());
  return page ? { errcode: 0, errmsg: 'ok', ...page } : wecomErr('invalidCursor');
}

/** service_state/get and service_state/trans, with the moves WeCom allows (wecom-sessions.ts). */
function serviceStateRoutes(app: FastifyInstance, wecom: WeComState, authorise: WeComAuthorise): void {
  app.post('/cgi-bin/kf/service_state/get', async (req, reply) => {
    const call = await authorise(req, reply);
    if (!call) return reply;
    const c = customerOf(wecom, call, 'external_userid');
    return 'errcode' in c ? c : { errcode: 0, errmsg: 'ok', ...wecom.state(c.corpId, c.openKfId, c.user) };
  });

  app.post('/cgi-bin/kf/service_state/trans', async (req, reply) => {
    const call = await authorise(req, reply);
    if (!call) return reply;
    const c = customerOf(wecom, call, 'external_userid');
    if ('errcode' in c) return c;
    const { corpId, body, openKfId, user } = c;
    const to = body.service_state;
    if (!isServiceState(to) || to === 0) return wecomErr('invalidParameter');
    const servicer = stringField(body.servicer_userid);
    const from = wecom.sessions.get(corpId, openKfId, user).state;
    const refused =
      to === 3 && !wecom.servicersOf(corpId).includes(servicer)
        ? 'unknownServicer'
        : wecom.sessions.trans({ corpId, openKfId, user }, to, servicer);
    const answer = refused ? wecomErr(refused) : { errcode: 0, errmsg: 'ok' };
    const { errcode } = answer;
    wecom.transCalls.push({ corpId, openKfId, externalUserId: user, from, to, servicer, errcode, at: wecom.now() });
    // WeCom hands a msg_code (for send_msg_on_event) when a session first moves to 2 or 3, and on ending it.
    if (refused || to === 1) return answer;
    return { ...answer, msg_code: wecom.issueCode(corpId, openKfId, user) };
  });
}
