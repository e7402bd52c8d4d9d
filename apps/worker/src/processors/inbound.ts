import { TokenUnavailableError, WeChatApiError, type WeChatClient } from '@wx-kf/shared/api';
import type { AccountConfig } from '@wx-kf/shared/config';
import { actionTime, type Take } from '@wx-kf/shared/conversation';
import type { Logger } from '@wx-kf/shared/log';
import {
  type InboundJobData,
  type InboundResult,
  OUTBOUND_JOB_OPTIONS,
  type OutboundJobData,
  type ReplyPlan,
} from '@wx-kf/shared/queue';
import type { Decision, ReplyRules, ReplyTemplate } from '@wx-kf/shared/rules';
import { inSpan } from '@wx-kf/shared/tracing';
import { messageBuilders, type ReplyItem } from '@wx-kf/shared/wechat';
import { Backoffs, type DefaultJobOptions, DelayedError, type Job, type Queue, UnrecoverableError } from 'bullmq';
import type { AiReplier } from '../replies/ai-reply.js';
import type { MessageHandler } from '../replies/handler.js';
import { hasFile, resolveMedia } from '../replies/media.js';
import type { ConversationHooks } from './conversation.js';
import { applyKfEvent, isKfEvent, type WorkerHandoff } from './handoff.js';
import { checkInboundJob, checkReplies, invalid } from './job-data.js';
import type { Reupload, SendReplies, SendReport } from './send.js';

export interface InboundDeps {
  accounts: Map<string, AccountConfig>;
  rules: Map<string, ReplyRules>;
  handler?: MessageHandler | undefined;
  outbound: Queue<OutboundJobData>;
  client: WeChatClient;
  logger: Logger;
  sendReplies: SendReplies;
  /** Options of the outbound jobs that take over a send that must wait (default OUTBOUND_JOB_OPTIONS). */
  outboundJobOptions?: DefaultJobOptions | undefined;
  /** Per-user order, send windows and typing (conversation.ts). */
  conversation?: ConversationHooks | undefined;
  /** Handoff to human agents: kf events change it; while open, the user gets no bot reply. */
  handoff?: WorkerHandoff | undefined;
  /** The model, for rules that answer with `ai` (replies/ai-reply.ts). */
  ai?: AiReplier | undefined;
}

/** How a job ended: the shared queue contract, which `pnpm queues show` reads back. */
export type { InboundResult };

/** What a plan's retry job carries over: the replies, their source, and a hand-over's pass through the handoff. */
const carried = ({ replies, source, ignoreHandoff }: ReplyPlan) => ({
  replies,
  source,
  ...(ignoreHandoff ? { ignoreHandoff } : {}),
});

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

/** The handler's `ctx.handoff`: open, close or read a user's handoff on this account. */
function handlerHandoff(handoff: WorkerHandoff, appId: string) {
  return {
    open: (touser: string, agent?: string) =>
      handoff.state.open(appId, touser, { reason: 'handler', agent, force: true }).then(() => undefined),
    close: (touser: string) =>
      handoff.state.close(appId, touser, { reason: 'handler', force: true }).then(() => undefined),
    isOpen: (touser: string) => handoff.state.isOpen(appId, touser),
  };
}

/**
 * Turns a stored push into a reply plan (rules, or the user's handler) and sends it at once, in this job:
 * one job per message while WeChat accepts. When a send must wait (a retryable error, a paused account, a
 * token cool-down), the replies not yet accepted move to one outbound job, which owns the retries; its id
 * derives from the inbound one, so a message never gets two. A permanent refusal fails this job.
 * A plan holds only custom/send bodies: a rules file's media are uploaded before, so no job names a file.
 */
export function inboundProcessor(deps: InboundDeps) {
  const { accounts, rules, handler, outbound, client, logger, sendReplies, conversation, handoff, ai } = deps;
  const jobOptions = deps.outboundJobOptions ?? OUTBOUND_JOB_OPTIONS;
  // The outbound job's first try is a retry of this send: BullMQ's backoff for it, as for its later retries.
  const firstRetryDelay = (job: Job, error: Error) => {
    const backoff = jobOptions.backoff === undefined ? undefined : Backoffs.normalize(jobOptions.backoff);
    return backoff ? Number(Backoffs.calculate(backoff, 1, error, job)) : 0;
  };

  const enqueue = async (data: OutboundJobData, jobId?: string, delay?: number) => {
    const job = await outbound.add('send', data, {
      ...jobOptions,
      ...(jobId ? { jobId } : {}),
      ...(delay ? { delay } : {}),
    });
    return job.id as string;
  };

  /** A planned message: its replies, and how to upload a rules file again after a 40007. */
  type Planned = { replies: ReplyItem[]; reupload?: Reupload };

  /** The handler's replies, validated like the send API's (media by media_id: upload with ctx.client). */
  const handlerPlan = async (data: InboundJobData, account: AccountConfig): Promise<Planned> => {
    const { appId, message, msgKey } = data;
    const result = await handler?.(message, {
      account: { appId, type: account.type },
      log: logger.child({ appId, msgKey }),
      reply: messageBuilders,
      handoff: handoff?.accounts.has(appId) ? handlerHandoff(handoff, appId) : undefined,
      client,
      send: (touser, items) =>
        enqueue({ appId, touser, msgKey, replies: checkReplies(items, account), sent: 0, source: 'handler' }),
      typing: (touser, on = true) => client.setTyping(appId, touser, on).catch(() => undefined),
      window: async (touser) => {
        if (!conversation) throw new Error('this worker keeps no send windows');
        return conversation.window(appId, touser);
      },
      getMedia: (mediaId) => client.getTempMedia(appId, mediaId),
    });
    const items = result === undefined || result === null ? [] : Array.isArray(result) ? result : [result];
    return { replies: items.length === 0 ? [] : checkReplies(items, account) };
  };

  /** The rules' replies with their files uploaded (media_id cached), validated again after rendering. */
  const rulesPlan = async (data: InboundJobData, account: AccountConfig, decision?: Decision): Promise<Planned> => {
    const { appId, msgKey } = data;
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
  };

  /** A message not planned before: the handler's or the rules' replies, showing typing while that takes. */
  const planFresh = async (
    job: Job<InboundJobData>,
    token: string | undefined,
    m: { data: InboundJobData; account: AccountConfig; decision: Decision | undefined; taken: Take | undefined },
  ): Promise<Planned> => {
    const { appId, receivedAt, message } = m.data;
    // A slow plan shows "typing…" (once, best effort); the user's last interaction is this message.
    const stopTyping = conversation?.typing(appId, message.FromUserName, actionTime(message.CreateTime) ?? receivedAt);
    try {
      return handler ? await handlerPlan(m.data, m.account) : await rulesPlan(m.data, m.account, m.decision);
    } catch (error) {
      await conversation?.giveBack(appId, message.FromUserName, m.taken);
      // No token to upload with for a while: wait it out in this job (a file never goes into job data).
      if (!(error instanceof TokenUnavailableError)) throw error;
      await job.moveToDelayed(Date.now() + error.retryAfterMs, token);
      throw new DelayedError();
    } finally {
      stopTyping?.();
    }
  };

  const process = async (job: Job<InboundJobData>, token?: string): Promise<InboundResult> => {
    const { data, account, touser } = checkInboundJob(job.data, accounts);
    const { appId, msgKey, transferred, receivedAt } = data;
    // Sends nothing, so it need not wait for its turn; it only lets the user's next message go.
    if (transferred) {
      await conversation?.release(appId, touser, job.id as string);
      return { action: 'transferred' };
    }
    // Invariant 12: while the user is with a human, the bot sends them nothing (kf events change that first).
    // A kf session event is the agents' tool reporting, not the user speaking: it changes the handoff, no reply.
    if (handoff?.accounts.has(appId)) {
      const kfEvent = isKfEvent(data.message);
      if (kfEvent) await applyKfEvent(handoff.state, appId, data.message);
      // The model's hand-over replies (stored with the plan) still go: the model opened this handoff.
      if (kfEvent || (!data.plan?.ignoreHandoff && (await handoff.state.isOpen(appId, touser)))) {
        await conversation?.release(appId, touser, job.id as string);
        return { action: 'handoff' };
      }
    }
    // A retry of a part-sent plan resumes it; planning again could change the replies (a handler) or resend.
    let plan: ReplyPlan | undefined = data.plan;
    // The rules' decision needs nothing but the message, so it is made first: when it has replies, the turn
    // also takes the first send (one round trip). A handler runs in the user's turn and takes sends as it sends.
    const decision = plan || handler ? undefined : rules.get(appId)?.decide(data.message);
    const sends = plan ? plan.sent < plan.replies.length : decision?.kind === 'reply' && decision.replies.length > 0;
    // The user's earlier messages are answered first (invariant 10): until then this job waits as delayed.
    const taken = await inSpan('turn', {}, () => conversation?.awaitTurn(job, token, account.type, data, sends));

    // The model's answer is stored before it is sent, and a retry sends the stored one (replies/ai-reply.ts).
    let report: SendReport | undefined;
    if (ai && (decision?.kind === 'ai' || plan?.source === 'ai')) {
      const answered = await ai.reply(job, token, data, account, decision?.kind === 'ai' ? decision : undefined);
      if (!answered) {
        await conversation?.release(appId, touser, job.id as string);
        return { action: 'none' };
      }
      ({ plan, report } = answered);
    }
    let reupload: Reupload | undefined;
    if (!plan) {
      const planned = await inSpan('plan', { 'wxkf.plan.source': handler ? 'handler' : 'rules' }, () =>
        planFresh(job, token, { data, account, decision, taken }),
      );
      if (planned.replies.length === 0) {
        await conversation?.release(appId, touser, job.id as string, taken);
        return { action: 'none' };
      }
      plan = { replies: planned.replies, source: handler ? 'handler' : 'rules', sent: 0 };
      reupload = planned.reupload;
    }
    const current = plan;
    const { sent, stop } = report?.stop
      ? report
      : await sendReplies(
          { appId, touser, msgKey, replies: current.replies, receivedAt, release: job.id, taken },
          current.sent,
          (n) => job.updateData({ ...data, plan: { ...current, sent: n } }),
          reupload,
        );
    if (!stop) {
      if (current.source === 'ai') await ai?.done(appId, touser, job.id as string);
      return { action: 'replied', replies: current.replies.length };
    }
    if (stop.kind === 'permanent') throw new UnrecoverableError(stop.reason);
    const outboundJobId = await enqueue(
      { appId, touser, msgKey, sent, receivedAt, ...carried(current) },
      `${job.id}-r`,
      stop.kind === 'wait' ? stop.delayMs : firstRetryDelay(job, stop.error),
    );
    const reason = stop.kind === 'wait' ? stop.reason : stop.error.message;
    logger.info({ appId, msgKey, sent, outboundJobId, reason }, 'replies handed to the outbound queue');
    return { action: 'requeued', replies: current.replies.length, sent, outboundJobId, reason };
  };

  return async (job: Job<InboundJobData>, token?: string): Promise<InboundResult> => {
    try {
      return await process(job, token);
    } catch (error) {
      // A message failing for good lets the user's next one go (a retry keeps its turn; a wait is no failure).
      const final = error instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      const user = (job.data?.message as { FromUserName?: unknown } | undefined)?.FromUserName;
      if (conversation && final && !(error instanceof DelayedError) && typeof user === 'string') {
        await conversation.release(job.data.appId, user, job.id as string).catch(() => undefined);
      }
      throw error;
    }
  };
}
