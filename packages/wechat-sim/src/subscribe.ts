import { dataProblemOf, type NotificationKind } from '@wx-kf/shared/notify';
import type { FieldMap } from '@wx-kf/shared/wechat';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { err, ok } from './answers.js';
import { isRecord, parseJsonBody, stringParam } from './json-body.js';
import type { SimState } from './state.js';
import { SIM_SUBSCRIBE_TEMPLATES, type SubscribeState } from './subscribe-state.js';

/** A page under this path is not in the released Mini Program: subscribe/send answers 41030. */
export const MISSING_PAGE = 'pages/missing';

/** The route of each kind and the kind of account it is for (another kind of account gets 48001). */
const ROUTES: readonly { kind: NotificationKind; path: string; account: 'miniprogram' | 'officialaccount' }[] = [
  { kind: 'subscribe', path: '/cgi-bin/message/subscribe/send', account: 'miniprogram' },
  { kind: 'bizsend', path: '/cgi-bin/message/subscribe/bizsend', account: 'officialaccount' },
  { kind: 'template', path: '/cgi-bin/message/template/send', account: 'officialaccount' },
];

/** `data` as WeChat takes it: `{ key: { value } }`, each value a string or a number. */
function dataOf(value: unknown): Record<string, { value: string | number }> | undefined {
  if (!isRecord(value)) return undefined;
  const data: Record<string, { value: string | number }> = {};
  for (const [key, entry] of Object.entries(value)) {
    const v = isRecord(entry) ? entry.value : undefined;
    if (typeof v !== 'string' && typeof v !== 'number') return undefined;
    data[key] = { value: v };
  }
  return data;
}

/** What WeChat answers a notification body before its grant is looked at: an errcode, or undefined when fine. */
function refusalOf(subs: SubscribeState, kind: NotificationKind, body: Record<string, unknown>) {
  if (typeof body.touser !== 'string' || body.touser === '') return err(40003, 'invalid openid');
  const template = subs.template(kind, body.template_id);
  if (!template) return err(40037, 'invalid template_id');
  const data = dataOf(body.data);
  const problem = data ? dataProblemOf(data, template.keys) : 'data';
  // WeChat's wording names the field: "argument invalid! data.thing1.value invalid".
  if (problem) return err(47003, `argument invalid! ${problem.split(':')[0]}.value invalid`);
  if (kind === 'subscribe' && typeof body.page === 'string' && body.page.startsWith(MISSING_PAGE)) {
    return err(41030, 'invalid page');
  }
  return undefined;
}

/**
 * WeChat's notifications: `subscribe/send` (Mini Programs), `subscribe/bizsend` and `template/send` (Official
 * Accounts) and `wxaapi/newtmpl/gettemplate`, with WeChat's refusals (40003, 40037, 47003 naming the field,
 * 41030 for a page under `pages/missing`, 48001 for the other kind of account) and the grants of the pop-up
 * events pushed (43101 without one; template messages need none). Control: `/__sim/subscriptions` (a user's
 * choice, the grants) and `/__sim/notifications` (what was sent).
 */
export function subscribeRoutes(
  app: FastifyInstance,
  state: SimState,
  subs: SubscribeState,
  authorise: (req: FastifyRequest, reply: FastifyReply) => Promise<string | undefined>,
): void {
  for (const { kind, path, account } of ROUTES) {
    app.post(path, async (req, reply) => {
      const appId = await authorise(req, reply);
      if (!appId) return reply;
      if (state.accounts.get(appId)?.type !== account) return err(48001, 'api unauthorized');
      const body = parseJsonBody(req.body);
      if (!body) return err(47001, 'data format error');
      const templateId = String(body.template_id ?? '');
      const template = subs.template(kind, body.template_id);
      const answer =
        refusalOf(subs, kind, body) ??
        (kind !== 'template' && template && !subs.use(appId, String(body.touser), template)
          ? err(43101, 'user refuse to accept the msg')
          : undefined);
      subs.calls.push({ appId, touser: String(body.touser ?? ''), kind, templateId, errcode: answer?.errcode ?? 0 });
      if (answer) return answer;
      subs.sent.push({ appId, touser: String(body.touser), kind, templateId, body, at: state.now() });
      app.log.info({ appId, kind, templateId }, `simulator: ${kind} notification delivered`);
      return kind === 'template' ? { ...ok, msgid: 1_000_000 + subs.sent.length } : ok;
    });
  }

  app.get('/wxaapi/newtmpl/gettemplate', async (req, reply) => {
    const appId = await authorise(req, reply);
    if (!appId) return reply;
    const data = SIM_SUBSCRIBE_TEMPLATES.map((t) => ({
      priTmplId: t.id,
      title: t.title,
      content: t.content,
      example: '',
      type: t.type,
    }));
    return { ...ok, data };
  });

  app.post('/__sim/subscriptions', async (req, reply) => {
    const body = parseJsonBody(req.body);
    const fields = ['appId', 'openid', 'templateId', 'status'] as const;
    if (!body || fields.some((f) => typeof body[f] !== 'string')) {
      return reply.code(400).send({ error: 'appId, openid, templateId and status are required' });
    }
    subs.choose(String(body.appId), String(body.openid), String(body.templateId), String(body.status));
    return ok;
  });
  app.get('/__sim/subscriptions', async (req) =>
    subs.grantsOf(stringParam(req.query, 'appId') ?? '', stringParam(req.query, 'openid') ?? ''),
  );
  app.get('/__sim/notifications', async (req) => {
    const appId = stringParam(req.query, 'appId');
    const touser = stringParam(req.query, 'touser');
    return subs.sent.filter((n) => (!appId || n.appId === appId) && (!touser || n.touser === touser));
  });
}

/** Parses `<template_id>:<status>` (`pnpm sim push --subscribe-popup`); throws on another shape. */
export function parsePopupChoice(value: string): { templateId: string; status: string } {
  const m = /^([A-Za-z0-9_-]{1,128}):(accept|acceptWithAudio|reject|ban|filter)$/.exec(value);
  if (!m?.[1] || !m[2]) throw new Error('give <template_id>:accept (or acceptWithAudio, reject, ban, filter)');
  return { templateId: m[1], status: m[2] };
}

/** A `subscribe_msg_popup_event` as WeChat pushes it: the user's choice for each template in one pop-up. */
export function popupEvent(
  choices: readonly { templateId: string; status: string }[],
  options: { fromUser?: string; toUser?: string; createTime?: number } = {},
): FieldMap {
  return {
    ToUserName: options.toUser ?? 'gh_wxkfsandbox0',
    FromUserName: options.fromUser ?? 'o_sim_user_0001',
    CreateTime: String(options.createTime ?? Math.floor(Date.now() / 1000)),
    MsgType: 'event',
    Event: 'subscribe_msg_popup_event',
    SubscribeMsgPopupEvent: {
      List: choices.map((c) => ({ TemplateId: c.templateId, SubscribeStatusString: c.status, PopupScene: '0' })),
    },
  };
}
