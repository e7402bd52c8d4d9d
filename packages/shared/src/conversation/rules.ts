import { wecomWindowGrant } from '../channel/wecom/window.js';
import type { AccountType } from '../wechat/custom-message.js';

/** What opened (or last widened) a user's send window. */
export type WindowTrigger = 'message' | 'enter_session' | 'click' | 'subscribe' | 'scan';

/** Sends a trigger allows, and for how long (docs/wechat-protocol.md §7.4). */
export interface WindowGrant {
  trigger: WindowTrigger;
  count: number;
  ms: number;
}

const MINUTE = 60_000;
const HOURS_48 = 48 * 3600_000;

/** WeChat's allowances per trigger: a user message 5 in 48 h; entering the chat (MP/MG) 2 in 1 min; OA events 3 in 1 min. */
export const WINDOW_GRANTS: Record<WindowTrigger, WindowGrant> = {
  message: { trigger: 'message', count: 5, ms: HOURS_48 },
  enter_session: { trigger: 'enter_session', count: 2, ms: MINUTE },
  click: { trigger: 'click', count: 3, ms: MINUTE },
  subscribe: { trigger: 'subscribe', count: 3, ms: MINUTE },
  scan: { trigger: 'scan', count: 3, ms: MINUTE },
};

// Only these menu kinds open a window on an Official Account (VIEW and the photo/location pickers do not).
const OA_EVENTS: Record<string, WindowTrigger> = {
  click: 'click',
  scancode_push: 'click',
  scancode_waitmsg: 'click',
  subscribe: 'subscribe',
  scan: 'scan',
};

// The user messages WeChat documents per kind of account (docs/wechat-protocol.md §6.1, §6.2): only these open a
// window. An unknown MsgType (a device message, a new kind) grants nothing: the ledger counts fewer, never more.
const MP_MESSAGES = new Set(['text', 'image', 'miniprogrampage']);
const OA_MESSAGES = new Set(['text', 'image', 'voice', 'video', 'shortvideo', 'location', 'link']);

/** The allowance a pushed message grants on this kind of account, or undefined when it grants none. */
export function windowGrant(
  type: AccountType,
  message: { MsgType?: unknown; Event?: unknown; [field: string]: unknown },
): WindowGrant | undefined {
  if (typeof message.MsgType !== 'string') return undefined;
  if (type === 'wecom-kf') return wecomWindowGrant(message); // the pull channel's own window (channel/wecom)
  if (message.MsgType !== 'event') {
    const documented = type === 'miniprogram' ? MP_MESSAGES : OA_MESSAGES;
    return documented.has(message.MsgType) ? WINDOW_GRANTS.message : undefined;
  }
  const event = typeof message.Event === 'string' ? message.Event.toLowerCase() : '';
  const trigger =
    type === 'miniprogram' ? (event === 'user_enter_tempsession' ? 'enter_session' : undefined) : OA_EVENTS[event];
  return trigger ? WINDOW_GRANTS[trigger] : undefined;
}

/**
 * When the user acted, in ms: the message's CreateTime, or undefined when it has none (then it grants nothing).
 * A pure function of the push, so every delivery of one push grants the same (and a grant no later than the
 * last one applied changes nothing); a push whose window has already ended grants nothing at all.
 */
export function actionTime(createTime: unknown): number | undefined {
  const seconds = typeof createTime === 'string' || typeof createTime === 'number' ? Number(createTime) : Number.NaN;
  return Number.isSafeInteger(seconds) && seconds > 0 ? seconds * 1000 : undefined;
}
