import { TokenUnavailableError, WeChatApiError } from '@wx-kf/shared/api';
import type { Channel, Channels } from '@wx-kf/shared/channel';
import type { AccountConfig } from '@wx-kf/shared/config';
import { actionTime, type Take } from '@wx-kf/shared/conversation';
import type { Logger } from '@wx-kf/shared/log';
import type { InboundJobData, OutboundJobData } from '@wx-kf/shared/queue';
import type { Decision, ReplyTemplate } from '@wx-kf/shared/rules';
import { messageBuilders, type ReplyItem } from '@wx-kf/shared/wechat';
import { DelayedError, type Job } from 'bullmq';
import type { MessageHandler } from '../replies/handler.js';
import { hasFile, resolveMedia } from '../replies/media.js';
import type { ConversationHooks } from './conversation.js';
import type { WorkerHandoff } from './handoff.js';
import { checkReplies, invalid } from './job-data.js';
import type { Reupload } from './send.js';
import { wecomVia } from './wecom.js';

/** What planning a message needs: the user's handler (else the rules), the client, and the user's conversation. */
export interface PlanDeps {
  handler?: MessageHandler | undefined;
  /** Each account's channel: its client uploads and downloads media, its typing shows "typing…". */
  channels: Channels;
  logger: Logger;
  conversation?: ConversationHooks | undefined;
  handoff?: WorkerHandoff | undefined;
  /** Adds an outbound job (a handler's `ctx.send`); resolves its id. */
  enqueue: (data: OutboundJobData, jobId?: string, delay?: number) => Promise<string>;
}

/** A planned message: its replies, and how to upload a rules file again after a 40007. */
export interface Planned {
  replies: ReplyItem[];
  reupload?: Reupload;
}

/** A media upload: a permanent refusal fails the job at once (a retry would get the same answer). */
async function uploadOrFail<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof WeChatApiError && error.action === 'fail') {
      throw invalid(`media upload: ${error.errcode} ${error.errmsg}`);
    }
    throw error;
  }
}

/**
 * The handler's `ctx.handoff`: open, close or read a user's handoff on this account. On WeCom, opening it for the
 * customer of this message also moves their session (service_state/trans, to `agent` or the queue).
 */
function handlerHandoff(handoff: WorkerHandoff, appId: string, channel: Channel, data: InboundJobData) {
  const { message, msgKey } = data;
  const { openKfId } = wecomVia(data);
  return {
    open: async (touser: string, agent?: string) => {
      if (openKfId && touser === message.FromUserName) {
        await channel.handOver?.(appId, { touser, msgKey, index: 0, openKfId }, agent);
      }
      await handoff.state.open(appId, touser, { reason: 'handler', agent, force: true });
    },
    close: (touser: string) =>
      handoff.state.close(appId, touser, { reason: 'handler', force: true }).then(() => undefined),
    isOpen: (touser: string) => handoff.state.isOpen(appId, touser),
  };
}

/** The handler's replies, validated like the send API's (media by media_id: upload with ctx.client). */
async function handlerPlan(deps: PlanDeps, data: InboundJobData, account: AccountConfig): Promise<Planned> {
  const { handler, logger, handoff, conversation, enqueue } = deps;
  const { appId, message, msgKey } = data;
  const channel = deps.channels.of(appId);
  const { client } = channel;
  const { openKfId } = wecomVia(data);
  // Each ctx.send is its own send: its own key, so WeCom's msgid (per key and reply) never repeats another's.
  let sends = 0;
  const result = await handler?.(message, {
    account: { appId, type: account.type },
    log: logger.child({ appId, msgKey }),
    reply: messageBuilders,
    handoff: handoff?.accounts.has(appId) ? handlerHandoff(handoff, appId, channel, data) : undefined,
    client,
    send: (touser, items) =>
      enqueue({
        appId,
        touser,
        msgKey: `${msgKey}/send-${++sends}`,
        replies: checkReplies(items, account),
        sent: 0,
        source: 'handler',
        ...(openKfId ? { openKfId } : {}),
      }),
    typing: async (touser, on = true) => channel.typing?.(appId, touser, on).catch(() => undefined),
    window: async (touser) => {
      if (!conversation) throw new Error('this worker keeps no send windows');
      return conversation.window(appId, touser);
    },
    getMedia: (mediaId) => client.getTempMedia(appId, mediaId),
  });
  const items = result === undefined || result === null ? [] : Array.isArray(result) ? result : [result];
  return { replies: items.length === 0 ? [] : checkReplies(items, account) };
}

/** The rules' replies with their files uploaded (media_id cached), validated again after rendering. */
async function rulesPlan(
  deps: PlanDeps,
  data: InboundJobData,
  account: AccountConfig,
  decision?: Decision,
): Promise<Planned> {
  const { logger } = deps;
  const { appId, msgKey } = data;
  const { client } = deps.channels.of(appId);
  if (decision?.kind !== 'reply' || decision.replies.length === 0) return { replies: [] };
  if (decision.missing) {
    logger.warn({ appId, msgKey, missing: decision.missing.slice(0, 5) }, 'reply template fields not in the message');
  }
  const templates = decision.replies;
  const upload = (t: ReplyTemplate, fresh = false) => uploadOrFail(() => resolveMedia(client, appId, t, { fresh }));
  const uploaded: ReplyTemplate[] = [];
  for (const t of templates) uploaded.push(await upload(t));
  return {
    // A filled-in template can still be empty or not a URL.
    replies: checkReplies(uploaded, account),
    reupload: async (i) => {
      const t = templates[i];
      return t && hasFile(t) ? checkReplies([await upload(t, true)], account)[0] : undefined;
    },
  };
}

/** A message not planned before: the handler's or the rules' replies, showing typing while that takes. */
export async function planFresh(
  deps: PlanDeps,
  job: Job<InboundJobData>,
  token: string | undefined,
  m: { data: InboundJobData; account: AccountConfig; decision: Decision | undefined; taken: Take | undefined },
): Promise<Planned> {
  const { conversation } = deps;
  const { appId, receivedAt, message } = m.data;
  // A slow plan shows "typing…" (once, best effort); the user's last interaction is this message.
  const stopTyping = conversation?.typing(appId, message.FromUserName, actionTime(message.CreateTime) ?? receivedAt);
  try {
    return deps.handler
      ? await handlerPlan(deps, m.data, m.account)
      : await rulesPlan(deps, m.data, m.account, m.decision);
  } catch (error) {
    await conversation?.giveBack(appId, message.FromUserName, m.taken);
    // No token to upload with for a while: wait it out in this job (a file never goes into job data).
    if (!(error instanceof TokenUnavailableError)) throw error;
    await job.moveToDelayed(Date.now() + error.retryAfterMs, token);
    throw new DelayedError();
  } finally {
    stopTyping?.();
  }
}
