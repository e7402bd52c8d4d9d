import type { HandoffState, Handoffs } from '@wx-kf/shared/handoff';
import type { Logger } from '@wx-kf/shared/log';
import type { InboundMessage } from '@wx-kf/shared/wechat';
import { repeat } from './repeat.js';

/** The accounts that keep a handoff state, and the state (shared with the ingress and admin through Redis). */
export interface WorkerHandoff {
  accounts: Set<string>;
  state: Handoffs;
}

const KF_EVENTS = new Set(['kf_create_session', 'kf_switch_session', 'kf_close_session', 'session_status_change']);

/** WeChat's session events (an agent took, moved or closed the user's session), and WeCom's `session_status_change`. */
export const isKfEvent = (message: InboundMessage): boolean =>
  message.MsgType === 'event' && KF_EVENTS.has(String(message.Event));

const text = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);

/**
 * Applies WeChat's session events (Official Accounts) to the user's handoff: `kf_create_session` opens it with
 * the agent, `kf_switch_session` moves it to `ToKfAccount`, `kf_close_session` closes it. Each carries its
 * CreateTime, so one processed late never undoes a newer one. Resolves the state after, when one applied.
 */
export async function applyKfEvent(
  handoffs: Handoffs,
  appId: string,
  message: InboundMessage,
): Promise<HandoffState | undefined> {
  if (message.MsgType !== 'event') return undefined;
  const openid = String(message.FromUserName);
  const at = Number(message.CreateTime) * 1000 || Date.now();
  switch (message.Event) {
    case 'kf_create_session':
      return handoffs.open(appId, openid, { reason: 'kf_create_session', agent: text(message.KfAccount), at });
    case 'kf_switch_session':
      return handoffs.open(appId, openid, { reason: 'kf_switch_session', agent: text(message.ToKfAccount), at });
    case 'kf_close_session':
      return handoffs.close(appId, openid, { reason: 'kf_close_session', at });
    case 'session_status_change':
      return applySessionChange(handoffs, appId, openid, message, at);
    default:
      return undefined;
  }
}

/**
 * WeCom's `session_status_change` (an agent's doing in WeCom's tools): change_type 1 (接入) and 4 (重新接入) open
 * the handoff with the new servicer, 2 (转接) moves it, 3 (结束) closes it.
 */
function applySessionChange(handoffs: Handoffs, appId: string, openid: string, message: InboundMessage, at: number) {
  const agent = text(message.NewServicer);
  switch (message.ChangeType) {
    case '1':
    case '4':
      return handoffs.open(appId, openid, { reason: 'kf_create_session', agent, at });
    case '2':
      return handoffs.open(appId, openid, { reason: 'kf_switch_session', agent, at });
    case '3':
      return handoffs.close(appId, openid, { reason: 'kf_close_session', at });
    default:
      return undefined;
  }
}

/**
 * Notices handoffs that closed by the idle timeout (their key expired), for every handoff account, every
 * `everyMs`; each is counted once across the cluster. Returns a stop function.
 */
export function startHandoffSweeper(handoff: WorkerHandoff, everyMs: number, logger: Logger): () => void {
  const sweep = async () => {
    for (const appId of handoff.accounts) await handoff.state.sweep(appId);
  };
  return repeat(everyMs, sweep, logger, 'handoff sweep failed; next one retries');
}
