import type { WindowGrant } from '../../conversation/rules.js';

const HOURS_48 = 48 * 3600_000;

/** A customer's message: 5 messages within 48 h (kf/send_msg; docs/wechat-protocol.md §15). */
const MESSAGE: WindowGrant = { trigger: 'message', count: 5, ms: HOURS_48 };
/** `enter_session` with a welcome code: one message within 20 s, through kf/send_msg_on_event. */
const WELCOME: WindowGrant = { trigger: 'enter_session', count: 1, ms: 20_000 };

/**
 * The allowance a pulled message grants: a customer's (origin 3) message, or an `enter_session` event that
 * carries a welcome code. An agent's message (origin 5) and other system events grant nothing.
 */
export function wecomWindowGrant(message: { MsgType?: unknown; Event?: unknown; [f: string]: unknown }) {
  if (message.Origin !== '3' && message.Origin !== '4') return undefined;
  if (message.MsgType !== 'event') return message.Origin === '3' ? MESSAGE : undefined;
  return message.Event === 'enter_session' && typeof message.WelcomeCode === 'string' ? WELCOME : undefined;
}
