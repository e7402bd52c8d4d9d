import { MessageFormatError, SENDABLE_TYPES, validateReply } from '@wx-kf/shared/wechat';
import type { FastifyInstance } from 'fastify';
import { err, ok } from './answers.js';
import type { CallGate } from './gate.js';
import { parseJsonBody } from './json-body.js';
import type { RecordedMessage, SimState } from './state.js';

/**
 * `custom/send` (the body checked as WeChat does, the send window taken when windows are on, the message
 * recorded and passed to `onMessage`) and `custom/typing`.
 */
export function messageRoutes(
  app: FastifyInstance,
  state: SimState,
  gate: CallGate,
  onMessage: ((message: RecordedMessage) => void) | undefined,
): void {
  app.post('/cgi-bin/message/custom/send', async (req, reply) => {
    const appId = await gate.authorise(req, reply);
    if (!appId) return reply;
    const account = state.accounts.get(appId);
    const body = parseJsonBody(req.body);
    if (!account || !body) return err(47001, 'data format error');
    const { touser, ...item } = body;
    if (typeof touser !== 'string' || touser === '') return err(40003, 'invalid openid');
    if (typeof item.msgtype !== 'string' || !SENDABLE_TYPES[account.type].includes(item.msgtype)) {
      return err(40008, 'invalid message type');
    }
    try {
      validateReply(item, account.type);
    } catch (error) {
      if (!(error instanceof MessageFormatError)) throw error;
      if (item.msgtype === 'news') return err(45008, 'article size out of limit');
      return err(47001, `data format error: ${error.message}`);
    }
    const window = state.takeWindow(appId, touser);
    if (window === 45015) return err(45015, 'response out of time limit or subscription is canceled');
    if (window === 45047) return err(45047, 'out of response count limit');
    const recorded = { appId, touser, msgtype: item.msgtype, body, at: state.now() };
    state.messages.push(recorded);
    onMessage?.(recorded);
    app.log.info({ appId, touser, msgtype: item.msgtype, message: item }, 'simulator: custom/send delivered');
    return ok;
  });

  app.post('/cgi-bin/message/custom/typing', async (req, reply) => {
    const appId = await gate.authorise(req, reply);
    if (!appId) return reply;
    const body = parseJsonBody(req.body);
    if (!body || typeof body.touser !== 'string') return err(40003, 'invalid openid');
    if (body.command !== 'Typing' && body.command !== 'CancelTyping') return err(45072, 'command invalid');
    state.typing.push({ appId, touser: body.touser, command: body.command, at: state.now() });
    return ok;
  });
}
