import type { FastifyInstance } from 'fastify';
import { isRecord, stringField } from './json-body.js';
import { customerOf, type WeComAuthorise } from './wecom-call.js';
import { type WeComErrorName, wecomErr } from './wecom-errcodes.js';
import type { WeComState } from './wecom-state.js';

/** The msgtypes send_msg accepts (WeCom's list). */
const SEND_TYPES = [
  'text',
  'image',
  'voice',
  'video',
  'file',
  'link',
  'miniprogram',
  'msgmenu',
  'location',
  'business_card',
  'ca_link',
];
/** send_msg_on_event sends only these. */
const EVENT_TYPES = ['text', 'msgmenu'];
const TEXT_MAX_BYTES = 2048;
/** The msgtypes whose body names an uploaded media_id. */
const MEDIA_TYPES = ['image', 'voice', 'video', 'file'];
/** WeCom's rule for a caller's msgid: up to 32 bytes of [0-9a-zA-Z_-]. */
const MSGID_RE = /^[0-9A-Za-z_-]{1,32}$/;

/** What is wrong with the message part of a send body, or undefined when WeCom would take it. */
function messageProblem(body: Record<string, unknown>, types: readonly string[]): WeComErrorName | undefined {
  const { msgtype } = body;
  if (typeof msgtype !== 'string' || !types.includes(msgtype)) return 'invalidMsgtype';
  const content = body[msgtype];
  if (!isRecord(content)) return msgtype === 'text' ? 'emptyContent' : 'invalidParameter';
  if (msgtype === 'text') {
    const text = stringField(content.content);
    if (text === '') return 'emptyContent';
    if (Buffer.byteLength(text) > TEXT_MAX_BYTES) return 'textTooLong';
  }
  if (body.msgid !== undefined && (typeof body.msgid !== 'string' || !MSGID_RE.test(body.msgid))) {
    return 'invalidMsgid';
  }
  return undefined;
}

const sent = (msgid: string) => ({ errcode: 0, errmsg: 'ok', msgid });

/**
 * kf/send_msg (the session must be 0 or 1, and the customer's last message at most 48 h old with fewer than
 * 5 API messages since) and kf/send_msg_on_event (a welcome_code or msg_code, once, within 20 s; outside that
 * window). A msgid the corp accepted before answers 0 with that msgid and delivers nothing (`duplicateSends`).
 */
export function wecomSendRoutes(app: FastifyInstance, wecom: WeComState, authorise: WeComAuthorise): void {
  app.post('/cgi-bin/kf/send_msg', async (req, reply) => {
    const call = await authorise(req, reply);
    if (!call) return reply;
    const c = customerOf(wecom, call, 'touser');
    if ('errcode' in c) return c;
    const { corpId, body, openKfId, user: touser } = c;
    const problem = messageProblem(body, SEND_TYPES);
    if (problem) return wecomErr(problem);
    const msgid = typeof body.msgid === 'string' ? body.msgid : undefined;
    if (msgid && wecom.isDuplicate(corpId, msgid)) return sent(msgid);
    const msgtype = stringField(body.msgtype);
    const part = body[msgtype];
    const media = isRecord(part) ? stringField(part.media_id) : '';
    if (MEDIA_TYPES.includes(msgtype) && !wecom.hasMedia(corpId, media)) return wecomErr('invalidMediaId');
    const refused = wecom.sessions.refusal(corpId, openKfId, touser, wecom.now());
    if (refused) return wecomErr(refused);
    wecom.sessions.countSend(corpId, openKfId, touser);
    return sent(wecom.deliver({ corpId, openKfId, touser, msgtype: stringField(body.msgtype), body }, msgid));
  });

  app.post('/cgi-bin/kf/send_msg_on_event', async (req, reply) => {
    const call = await authorise(req, reply);
    if (!call) return reply;
    const { corpId, body } = call;
    if (!body) return wecomErr('dataFormat');
    const problem = messageProblem(body, EVENT_TYPES);
    if (problem) return wecomErr(problem);
    const msgid = typeof body.msgid === 'string' ? body.msgid : undefined;
    // Before the code: a retry of an accepted send finds its code used, and must still hear 0.
    if (msgid && wecom.isDuplicate(corpId, msgid)) return sent(msgid);
    const target = wecom.takeCode(corpId, stringField(body.code));
    if (!target) return wecomErr('invalidCode');
    const { openKfId, externalUserId: touser } = target;
    const msgtype = stringField(body.msgtype);
    return sent(wecom.deliver({ corpId, openKfId, touser, msgtype, body, viaEvent: true }, msgid));
  });
}
