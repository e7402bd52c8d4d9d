import { TokenUnavailableError, TransportError, WeChatApiError } from '@wx-kf/shared/api';
import type { Channel, Channels, Recipient } from '@wx-kf/shared/channel';
import { describeReply, type Take } from '@wx-kf/shared/conversation';
import type { Logger } from '@wx-kf/shared/log';
import type { OutboundJobData } from '@wx-kf/shared/queue';
import { keyspaceOf, type RedisClient } from '@wx-kf/shared/redis';
import { annotate, inSpan } from '@wx-kf/shared/tracing';
import type { ReplyItem } from '@wx-kf/shared/wechat';
import type { WorkerMetrics } from '../metrics.js';
import type { ConversationHooks } from './conversation.js';

/** How long an account's sending pauses after 45009 (daily quota reached); then one job probes again. */
export const QUOTA_PAUSE_MS = 15 * 60_000;

/** How long "not paused" is believed without asking Redis again: an operator's pause takes hold within it. */
export const PAUSE_CHECK_MS = 1000;

export interface SendDeps {
  /** Each account's channel (WeChat's custom/send, WeCom's kf/send_msg). */
  channels: Channels;
  redis: RedisClient;
  logger: Logger;
  metrics: WorkerMetrics;
  /** The users' send windows and timelines (conversation.ts); without it, sends are not checked. */
  conversation?: ConversationHooks | undefined;
  /**
   * A send refused because the session is not the bot's (WeCom's 95018): the session's holder is read again and
   * the handoff follows it (processors/handoff.ts). Never retried.
   */
  onSessionRefused?: ((appId: string, to: Recipient) => Promise<void>) | undefined;
}

/** Why sending stopped before the last reply. */
export type SendStop =
  /** The account is paused (operator or 45009) or its token is cooling down: try again after `delayMs`. */
  | { kind: 'wait'; delayMs: number; reason: string }
  /** A retryable failure (-1, 45011, 5xx, timeouts, a token that could not be refreshed): back off, retry. */
  | { kind: 'retry'; error: Error }
  /** WeChat refused for good (45015, 45047, 40003, …): `reason` is `errcode errmsg`. */
  | { kind: 'permanent'; reason: string };

/** How far a send got: `sent` replies were accepted; `stop` says why it ended early, if it did. */
export interface SendReport {
  sent: number;
  stop?: SendStop;
}

export type Replies = Pick<
  OutboundJobData,
  'appId' | 'touser' | 'msgKey' | 'replies' | 'receivedAt' | 'ignoreWindow' | 'openKfId' | 'code'
> & {
  /** The job to take out of the user's order once every reply is accepted or the send fails for good. */
  release?: string | undefined;
  /** The send already taken from the window for the first reply to go out (by the turn that let the job go). */
  taken?: Take | undefined;
};

/** A fresh copy of reply `i` with its media uploaded again (after 40007), when its source file is known. */
export type Reupload = (i: number) => Promise<ReplyItem | undefined>;

/** Accounts' pauses (operator or 45009), with the accounts seen unpaused and when: saves a Redis round trip per message. */
class AccountPauses {
  private readonly unpausedAt = new Map<string, number>();

  constructor(private readonly redis: RedisClient) {}

  /** The account's pause in ms (0 = none; -1 = until an operator resumes it); a pause is always re-read. */
  async pausedFor(appId: string): Promise<number> {
    const seen = this.unpausedAt.get(appId);
    if (seen !== undefined && Date.now() - seen < PAUSE_CHECK_MS) return 0;
    const ttl = await this.redis.pttl(keyspaceOf(this.redis).paused(appId));
    if (ttl === -2) this.unpausedAt.set(appId, Date.now());
    else this.unpausedAt.delete(appId);
    return ttl === -2 ? 0 : ttl;
  }

  /** Pauses the account's sending for QUOTA_PAUSE_MS (its daily quota is reached). */
  async pause(appId: string, reason: string): Promise<void> {
    await this.redis.set(keyspaceOf(this.redis).paused(appId), reason, 'PX', QUOTA_PAUSE_MS);
    this.unpausedAt.delete(appId);
  }
}

/** What the send loop works with: the process's parts and its accounts' pauses. */
type Sending = SendDeps & { pauses: AccountPauses };

function wait(metrics: WorkerMetrics, appId: string, delayMs: number, reason: string): SendStop {
  metrics.retries.inc({ app_id: appId, reason });
  return { kind: 'wait', delayMs, reason };
}

/** One send on the account's channel; a cached media_id that WeChat no longer knows: the rules' file uploaded again, once. */
async function sendOne(
  channel: Channel,
  appId: string,
  to: Recipient,
  item: ReplyItem,
  reupload: () => Promise<ReplyItem | undefined>,
): Promise<void> {
  try {
    await channel.send(appId, to, item);
  } catch (error) {
    if (!(error instanceof WeChatApiError && error.action === 'reupload_media')) throw error;
    const fresh = await reupload();
    if (!fresh) throw error;
    await channel.send(appId, to, fresh);
  }
}

/** What a failed send means for the job, with its metrics and one log line. */
async function classify(s: Sending, appId: string, to: Recipient, error: unknown, log: Logger): Promise<SendStop> {
  const { metrics } = s;
  const i = to.index;
  if (error instanceof WeChatApiError) {
    metrics.sends.inc({ app_id: appId, errcode: String(error.errcode) });
    log.warn({ errcode: error.errcode, errmsg: error.errmsg, reply: i, action: error.action }, 'send refused');
    if (error.rule.session === 'refresh') await s.onSessionRefused?.(appId, to).catch(() => undefined);
    if (error.action === 'pause_account') {
      await s.pauses.pause(appId, `${error.errcode} ${error.errmsg}`);
      log.error({ errcode: error.errcode }, 'daily quota reached: sending paused for this account');
      return wait(metrics, appId, QUOTA_PAUSE_MS, 'quota');
    }
    if (error.action === 'retry' || error.action === 'refresh_token') {
      metrics.retries.inc({ app_id: appId, reason: String(error.errcode) });
      return { kind: 'retry', error };
    }
    return { kind: 'permanent', reason: `${error.errcode} ${error.errmsg}` };
  }
  if (error instanceof TokenUnavailableError) return wait(metrics, appId, error.retryAfterMs, 'token');
  if (error instanceof TransportError) {
    metrics.sends.inc({ app_id: appId, errcode: 'transport' });
    metrics.retries.inc({ app_id: appId, reason: error.kind });
    log.warn({ reply: i, kind: error.kind, err: error.message }, 'send failed in transport');
  }
  return { kind: 'retry', error: error instanceof Error ? error : new Error(String(error)) };
}

/**
 * Reply `i` of the job through the window and WeChat, its outcome settled: undefined when WeChat accepted it,
 * else why sending stops. `first`: the first reply of this attempt, which may use the send the turn took.
 */
async function sendReply(
  s: Sending,
  job: Replies,
  item: ReplyItem,
  i: number,
  first: boolean,
  reupload: Reupload | undefined,
): Promise<SendStop | undefined> {
  const { metrics, logger, conversation } = s;
  const { appId, touser, msgKey } = job;
  const last = i + 1 === job.replies.length;
  const to: Recipient = { touser, msgKey, index: i, openKfId: job.openKfId, code: job.code };
  // The window first: a send it forbids fails at once, without calling WeChat and without retries.
  // The send the turn took, if it got one; a refusal then is taken again (the user may have written since).
  const take = first && job.taken?.ok ? job.taken : await conversation?.take(appId, touser);
  if (conversation && take && !take.ok && !job.ignoreWindow) {
    metrics.windowRefusals.inc({ app_id: appId, reason: take.reason });
    annotate({ 'wxkf.window.refused': take.reason });
    logger.warn({ appId, msgKey, reply: i, reason: take.message }, 'send refused by the window ledger');
    const entry = { ...describeReply(item), jobId: msgKey, result: `refused: ${take.message}` };
    await conversation.settle(appId, touser, { entry, release: job.release });
    return { kind: 'permanent', reason: take.message };
  }
  try {
    const attributes = { 'wxkf.reply.index': i, 'wxkf.reply.msgtype': item.msgtype };
    const channel = s.channels.of(appId);
    await inSpan('send', attributes, () => sendOne(channel, appId, to, item, async () => reupload?.(i)), {
      onSuccess: { 'wechat.errcode': 0 },
    });
  } catch (error) {
    // A child logger only on this rare path: the usual one logs a single line (replySender).
    const stop = await classify(s, appId, to, error, logger.child({ appId, msgKey }));
    await conversation?.settle(appId, touser, {
      take,
      error,
      entry: { ...describeReply(item), jobId: msgKey, result: outcomeText(error) },
      release: stop.kind === 'permanent' ? job.release : undefined,
    });
    return stop;
  }
  metrics.sends.inc({ app_id: appId, errcode: '0' });
  const entry = { ...describeReply(item), jobId: msgKey, result: 'sent' };
  const sent = { item, jobId: msgKey };
  // WeCom's welcome went with its event's code (send_msg_on_event), which the 5 sends after a message do not count.
  const uncounted = Boolean(to.code) && i === 0; // (a retry job resumes at reply `sent`: its code is used once)
  await conversation?.settle(appId, touser, { take, entry, release: last ? job.release : undefined, sent, uncounted });
  return undefined;
}

/**
 * The send loop both processors share: sends `replies` in order from index `from`, calling `saveProgress`
 * after each accepted reply but the last (the caller's job completion records that one), so a retry resumes
 * after the last reply WeChat accepted. Never throws for WeChat's answers: it reports why it stopped.
 * `replies` are validated custom/send bodies (media by media_id); `reupload` re-uploads a rules file on 40007.
 */
export function replySender(deps: SendDeps) {
  const s: Sending = { ...deps, pauses: new AccountPauses(deps.redis) };
  const { logger, metrics, conversation } = s;

  return async (
    job: Replies,
    from: number,
    saveProgress: (sent: number) => Promise<unknown>,
    reupload?: Reupload,
  ): Promise<SendReport> => {
    const { appId, touser, replies, msgKey } = job;
    const paused = await s.pauses.pausedFor(appId);
    if (paused !== 0) {
      await conversation?.giveBack(appId, touser, job.taken);
      return { sent: from, stop: wait(metrics, appId, paused > 0 ? paused : 60_000, 'paused') };
    }
    for (const [k, item] of replies.slice(from).entries()) {
      const i = from + k;
      const stop = await sendReply(s, job, item, i, k === 0, reupload);
      if (stop) return { sent: i, stop };
      if (i + 1 < replies.length) await saveProgress(i + 1);
    }
    // Nothing left to send (every reply was accepted before a crash): the order still has to move on.
    if (from >= replies.length) {
      if (job.release) await conversation?.release(appId, touser, job.release);
      return { sent: replies.length };
    }
    logger.info(
      {
        appId,
        msgKey,
        touser,
        replies: replies.length,
        latencyMs: job.receivedAt ? Date.now() - job.receivedAt : undefined,
      },
      'replies sent',
    );
    return { sent: replies.length };
  };
}

export type SendReplies = ReturnType<typeof replySender>;

/** A failed send in a timeline entry: WeChat's `errcode errmsg`, or the transport failure. */
function outcomeText(error: unknown): string {
  if (error instanceof WeChatApiError) return `${error.errcode} ${error.errmsg}`.slice(0, 80);
  if (error instanceof TransportError) return `transport: ${error.kind}`;
  return 'error';
}
