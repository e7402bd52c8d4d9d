import {
  type AccountConfig,
  type InboundJobData,
  type Logger,
  MessageFormatError,
  OUTBOUND_JOB_OPTIONS,
  type OutboundJobData,
  type ReplyRules,
  reply,
  validateReplyTemplate,
  type WeChatClient,
} from '@wx-kf/shared';
import { type Job, type Queue, UnrecoverableError } from 'bullmq';
import type { MessageHandler } from '../replies/handler.js';

export interface InboundDeps {
  accounts: Map<string, AccountConfig>;
  rules: Map<string, ReplyRules>;
  handler?: MessageHandler | undefined;
  outbound: Queue<OutboundJobData>;
  client: WeChatClient;
  logger: Logger;
  /** Base delay of the outbound jobs' exponential backoff (default from OUTBOUND_JOB_OPTIONS). */
  retryDelayMs?: number | undefined;
}

export type InboundResult =
  | { action: 'transferred' | 'none' }
  | { action: 'reply'; replies: number; outboundJobId: string };

/**
 * Turns a stored push into a reply plan (rules, or the user's handler) and queues one outbound job with the
 * ordered replies. The outbound job id derives from the inbound one, so a retried inbound job adds nothing.
 */
export function inboundProcessor(deps: InboundDeps) {
  const { accounts, rules, handler, outbound, client, logger, retryDelayMs } = deps;
  const jobOptions = retryDelayMs
    ? { ...OUTBOUND_JOB_OPTIONS, backoff: { type: 'exponential', delay: retryDelayMs, jitter: 0.5 } }
    : OUTBOUND_JOB_OPTIONS;

  const enqueue = async (data: OutboundJobData, jobId?: string) => {
    const job = await outbound.add('send', data, { ...jobOptions, ...(jobId ? { jobId } : {}) });
    return job.id as string;
  };

  return async (job: Job<InboundJobData>): Promise<InboundResult> => {
    const { appId, message, msgKey, transferred, receivedAt } = job.data;
    if (transferred) return { action: 'transferred' };
    const account = accounts.get(appId);
    if (!account) throw new UnrecoverableError(`account ${appId} is not configured on this worker`);
    const log = logger.child({ appId, msgKey });

    let replies: unknown[];
    let source: OutboundJobData['source'] = 'rules';
    if (handler) {
      source = 'handler';
      const result = await handler(message, {
        account: { appId, type: account.type },
        log,
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
    if (replies.length === 0) return { action: 'none' };
    replies.forEach((item, i) => {
      try {
        validateReplyTemplate(item, account.type);
      } catch (error) {
        if (error instanceof MessageFormatError) throw new UnrecoverableError(`reply ${i}: ${error.message}`);
        throw error;
      }
    });
    const outboundJobId = await enqueue(
      {
        appId,
        touser: message.FromUserName,
        msgKey,
        replies: replies as OutboundJobData['replies'],
        sent: 0,
        source,
        receivedAt,
      },
      `${job.id}-r`,
    );
    return { action: 'reply', replies: replies.length, outboundJobId };
  };
}
