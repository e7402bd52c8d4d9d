// What the conversation pipeline does differently for a WeCom customer (微信客服); everything else is shared.
import { WeChatApiError } from '@wx-kf/shared/api';
import type { Channels, Recipient } from '@wx-kf/shared/channel';
import type { Logger } from '@wx-kf/shared/log';
import type { InboundJobData, InboundResult } from '@wx-kf/shared/queue';
import type { WorkerHandoff } from './handoff.js';
import type { SendStop } from './send.js';

/** Where a WeCom reply goes: the open_kfid the customer wrote to, and an event's code (the welcome). */
export function wecomVia(data: InboundJobData): { openKfId?: string; code?: string } {
  const { OpenKfId, WelcomeCode } = data.message;
  return {
    ...(typeof OpenKfId === 'string' ? { openKfId: OpenKfId } : {}),
    ...(typeof WelcomeCode === 'string' ? { code: WelcomeCode } : {}),
  };
}

/**
 * A pulled message the bot does not answer: history (a first pull's old message), an agent's message (origin 5)
 * or a system event (origin 4) other than a welcome (`enter_session` with its code) and the session changes the
 * handoff reads. Each is in the timeline already (the puller's ingest wrote it).
 */
export function wecomSilence(data: InboundJobData, tracksHandoff: boolean): 'history' | 'none' | undefined {
  const m = data.message;
  // A session change applies to the handoff even as history (an older one never undoes a newer one); without a
  // handoff kept for the account it is only recorded.
  if (m.MsgType === 'event' && m.Event === 'session_status_change') return tracksHandoff ? undefined : 'none';
  if (data.history) return 'history';
  if (m.Origin === '5') return 'none';
  if (m.MsgType !== 'event') return undefined;
  return m.Event === 'enter_session' && typeof m.WelcomeCode === 'string' ? undefined : 'none';
}

/** What a WeCom transfer needs: the channels and the handoff. */
interface TransferDeps {
  channels: Channels;
  handoff?: WorkerHandoff | undefined;
}

/**
 * A transfer rule on WeCom: the session moves with service_state/trans (to the named person, else the queue),
 * then the handoff opens, so the bot is silent until it closes. A rerun finds the handoff open and stops before.
 */
export async function wecomTransfer(
  c: TransferDeps,
  checked: { data: InboundJobData; touser: string },
  decision: { kfAccount?: string | undefined },
): Promise<InboundResult> {
  const { data, touser } = checked;
  const to: Recipient = { touser, msgKey: data.msgKey, index: 0, ...wecomVia(data) };
  await c.channels.of(data.appId).handOver?.(data.appId, to, decision.kfAccount);
  await c.handoff?.state.open(data.appId, touser, { reason: 'rule', agent: decision.kfAccount, force: true });
  return { action: 'transferred' };
}

/** After the model's hand-over replies: WeCom's session moves to the queue (a WeChat account has nothing to move). */
export async function handOverAfterReplies(
  c: { channels: Channels },
  appId: string,
  touser: string,
  msgKey: string,
  via: { openKfId?: string },
): Promise<void> {
  await c.channels.of(appId).handOver?.(appId, { touser, msgKey, index: 0, ...via });
}

/**
 * The model's hand-over when its replies could not all go: the session moves now. Not when WeCom already said the
 * session is not the bot's (95018: a person or the queue has it), nor when WeCom refuses the move for good (95016:
 * the same); a transient failure throws, and the job's retry moves it.
 */
export async function handOverOnStop(
  c: { channels: Channels },
  to: { appId: string; touser: string; msgKey: string; via: { openKfId?: string } },
  stop: SendStop,
): Promise<void> {
  if (stop.kind === 'permanent' && stop.reason.startsWith('95018')) return;
  try {
    await handOverAfterReplies(c, to.appId, to.touser, to.msgKey, to.via);
  } catch (error) {
    if (!(error instanceof WeChatApiError && error.action === 'fail')) throw error;
  }
}

/**
 * A send refused because the session is not the bot's (WeCom's 95018): the session's holder is read and the
 * handoff follows it (open while a person or the queue has it, closed otherwise), so the next message is silent.
 */
export function sessionRefused(channels: Channels, handoff: WorkerHandoff, logger: Logger) {
  return async (appId: string, to: Recipient): Promise<void> => {
    const holder = await channels.of(appId).sessionHolder?.(appId, to);
    if (!holder || !handoff.accounts.has(appId)) return;
    const change = { reason: 'session_state', agent: holder.agent, force: true } as const;
    if (holder.held) await handoff.state.open(appId, to.touser, change);
    else await handoff.state.close(appId, to.touser, change);
    logger.info({ appId, held: holder.held }, 'WeCom session read again after 95018');
  };
}
