import {
  type AccountConfig,
  type InboundJobData,
  type Logger,
  MessageFormatError,
  OUTBOUND_JOB_OPTIONS,
  type OutboundJobData,
  type ReplyPlan,
  type ReplyRules,
  reply,
  validateReplyTemplate,
  type WeChatClient,
} from '@wx-kf/shared';
import { type Job, type Queue, UnrecoverableError } from 'bullmq';
import type { MessageHandler } from '../replies/handler.js';
import type { SendReplies } from './send.js';

export interface InboundDeps {
  accounts: Map<string, AccountConfig>;
  rules: Map<string, ReplyRules>;
  handler?: MessageHandler | undefined;
  outbound: Queue<OutboundJobData>;
  client: WeChatClient;
  logger: Logger;
  sendReplies: SendReplies;
  /** Base delay of the outbound jobs' exponential backoff (default from OUTBOUND_JOB_OPTIONS). */
  retryDelayMs?: number | undefined;
}

export type InboundResult =
  | { action: 'transferred' | 'none' }
  | { action: 'replied'; replies: number }
  | { action: 'handed_off'; replies: number; sent: number; outboundJobId: string; reason: string };

/** Replies must be valid custom/send bodies for the account kind; a bad one fails the job with the reason. */
function validateReplies(replies: unknown[], account: AccountConfig): void {
  replies.forEach((item, i) => {
    try {
      validateReplyTemplate(item, account.type);
    } catch (error) {
      if (error instanceof MessageFormatError) throw new UnrecoverableError(`reply ${i}: ${error.message}`);
      throw error;
    }
  });
}

/** A retry's delay: the outbound jobs' exponential backoff base, with the same 50 % jitter. */
const firstRetryDelay = (base: number) => Math.round(base * (1 - Math.random() * 0.5));

/**
 * Turns a stored push into a reply plan (rules, or the user's handler) and sends it at once, in this job:
 * one job per message while WeChat accepts. When a send must wait (a retryable error, a paused account, a
 * token cool-down), the replies not yet accepted move to one outbound job, which owns the retries; its id
 * derives from the inbound one, so a message never gets two. A permanent refusal fails this job.
 */
export function inboundProcessor(deps: InboundDeps) {
  const { accounts, rules, handler, outbound, client, logger, sendReplies } = deps;
  const retryDelayMs = deps.retryDelayMs ?? (OUTBOUND_JOB_OPTIONS.backoff as { delay: number }).delay;
  const jobOptions = deps.retryDelayMs
    ? { ...OUTBOUND_JOB_OPTIONS, backoff: { type: 'exponential', delay: retryDelayMs, jitter: 0.5 } }
    : OUTBOUND_JOB_OPTIONS;

  const enqueue = async (data: OutboundJobData, jobId?: string, delay?: number) => {
    const job = await outbound.add('send', data, {
      ...jobOptions,
      ...(jobId ? { jobId } : {}),
      ...(delay ? { delay } : {}),
    });
    return job.id as string;
  };

  /** The replies for a message, from the user's handler or the account's rules, validated. */
  const planFor = async (data: InboundJobData, account: AccountConfig): Promise<ReplyPlan | undefined> => {
    const { appId, message, msgKey } = data;
    let replies: unknown[];
    let source: OutboundJobData['source'] = 'rules';
    if (handler) {
      source = 'handler';
      const result = await handler(message, {
        account: { appId, type: account.type },
        log: logger.child({ appId, msgKey }),
        reply,
        client,
        send: (touser, items) => enqueue({ appId, touser, msgKey, replies: items, sent: 0, source: 'handler' }),
        typing: (touser, on = true) => client.setTyping(appId, touser, on).catch(() => undefined),
        getMedia: (mediaId) => client.getTempMedia(appId, mediaId),
      });
      replies = result === undefined || result === null ? [] : Array.isArray(result) ? result : [result];
    } else {
      const decision = rules.get(appId)?.decide(message);
      replies = decision?.kind === 'reply' ? decision.replies : [];
    }
    if (replies.length === 0) return undefined;
    // Checked again after rendering: a filled-in template can still be empty or not a URL.
    validateReplies(replies, account);
    return { replies: replies as ReplyPlan['replies'], source, sent: 0 };
  };

  return async (job: Job<InboundJobData>): Promise<InboundResult> => {
    const { appId, message, msgKey, transferred, receivedAt } = job.data;
    if (transferred) return { action: 'transferred' };
    const account = accounts.get(appId);
    if (!account) throw new UnrecoverableError(`account ${appId} is not configured on this worker`);

    // A retry of a part-sent plan resumes it; planning again could change the replies (a handler) or resend.
    const plan = job.data.plan ?? (await planFor(job.data, account));
    if (!plan) return { action: 'none' };
    const touser = message.FromUserName;
    const { sent, stop } = await sendReplies(
      { appId, touser, msgKey, replies: plan.replies, receivedAt },
      plan.sent,
      (n) => job.updateData({ ...job.data, plan: { ...plan, sent: n } }),
    );
    if (!stop) return { action: 'replied', replies: plan.replies.length };
    if (stop.kind === 'permanent') throw new UnrecoverableError(stop.reason);
    const outboundJobId = await enqueue(
      { appId, touser, msgKey, replies: plan.replies, sent, source: plan.source, receivedAt },
      `${job.id}-r`,
      stop.kind === 'wait' ? stop.delayMs : firstRetryDelay(retryDelayMs),
    );
    const reason = stop.kind === 'wait' ? stop.reason : stop.error.message;
    logger.info({ appId, msgKey, sent, outboundJobId, reason }, 'replies handed to the outbound queue');
    return { action: 'handed_off', replies: plan.replies.length, sent, outboundJobId, reason };
  };
}
