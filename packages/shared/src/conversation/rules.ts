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

/** The allowance a pushed message grants on this kind of account, or undefined when it grants none. */
export function windowGrant(
  type: AccountType,
  message: { MsgType?: unknown; Event?: unknown },
): WindowGrant | undefined {
  if (typeof message.MsgType !== 'string') return undefined;
  if (message.MsgType !== 'event') return WINDOW_GRANTS.message;
  const event = typeof message.Event === 'string' ? message.Event.toLowerCase() : '';
  const trigger =
    type === 'miniprogram' ? (event === 'user_enter_tempsession' ? 'enter_session' : undefined) : OA_EVENTS[event];
  return trigger ? WINDOW_GRANTS[trigger] : undefined;
}

/** A push's CreateTime is believed this far before the ingress received it (WeChat retries within ~15 s). */
const CREATE_TIME_SLACK_MS = 5 * MINUTE;

/**
 * When the user acted, in ms: the message's CreateTime when it is plausible (at most 5 minutes before it was
 * received), else the time it was received. Every re-delivery of a push gives the same instant, so a grant
 * applied twice is applied once.
 */
export function actionTime(receivedAt: number, createTime: unknown): number {
  const seconds = typeof createTime === 'string' || typeof createTime === 'number' ? Number(createTime) : Number.NaN;
  const at = seconds * 1000;
  return Number.isFinite(at) && at <= receivedAt && at >= receivedAt - CREATE_TIME_SLACK_MS ? at : receivedAt;
}
