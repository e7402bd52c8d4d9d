import { type InboundResult, readInboundResult, type StoredJobData } from '@wx-kf/shared/queue';
import type { Job } from 'bullmq';
import { clip } from '../cli-output.js';
import type { Queues } from '../queues.js';
import { firstLine } from './context.js';

/** ISO 8601 with the zone (UTC), for humans and JSON alike. */
const iso = (ms: number | undefined) => (ms ? new Date(ms).toISOString() : undefined);

interface ReplyLike {
  msgtype?: string;
  [field: string]: unknown;
}

/** The fields that say what a reply is, most telling first. */
const GIST_FIELDS = ['content', 'title', 'media_id', 'file', 'card_id'];

/** One line per reply: its type and its text, title or media. */
function describeReply(item: ReplyLike): string {
  const body = item.msgtype ? item[item.msgtype] : undefined;
  const fields = typeof body === 'object' && body !== null ? body : undefined;
  const gist =
    GIST_FIELDS.map((name) => (fields ? Reflect.get(fields, name) : undefined)).find((v) => v != null) ??
    JSON.stringify(body ?? {});
  return clip(`${item.msgtype ?? '?'}: ${String(gist)}`, 120);
}

/** A job in one line of `list`: who, what, how often tried, and why it failed. */
export function summary(job: Job) {
  const data: StoredJobData = job.data;
  const message = data.message;
  return {
    id: job.id,
    queue: job.queueName,
    appId: data.appId,
    user: data.touser ?? message?.FromUserName,
    type: message
      ? message.Event
        ? `event ${message.Event}`
        : (message.MsgType ?? '?')
      : (notificationType(job) ?? `${data.replies?.length ?? 0} replies`),
    attempts: job.attemptsMade,
    created: iso(job.timestamp),
    failedReason: job.failedReason || undefined,
  };
}

/** A notification job's kind and template: `notify` jobs carry WeChat's body, not replies. */
function notificationType(job: Job): string | undefined {
  const data: unknown = job.data;
  if (job.name !== 'notify' || typeof data !== 'object' || data === null) return undefined;
  const kind = 'kind' in data && typeof data.kind === 'string' ? data.kind : 'subscribe';
  const body = 'notification' in data && typeof data.notification === 'object' ? data.notification : null;
  const template = body && 'template_id' in body && typeof body.template_id === 'string' ? body.template_id : '?';
  return `notification ${kind} ${template}`;
}

/** How many replies a completed outbound (send) job had accepted, from its result. */
function sentOf(state: string, data: StoredJobData, result: unknown): number | undefined {
  if (state !== 'completed' || data.message) return undefined;
  const sent = (result as { sent?: unknown } | null | undefined)?.sent;
  return typeof sent === 'number' ? sent : undefined;
}

/** A job's replies, how many WeChat accepted, and how it ended. */
async function outcomeOf(job: Job, queues: Queues) {
  const data: StoredJobData = job.data;
  const state = await job.getState();
  // An inbound job keeps its plan only once part-sent; replies still owed move to the outbound job `<id>-r`.
  const retryJob = data.message ? await queues.find(`${job.id}-r`, queues.outbounds) : undefined;
  const retryData: StoredJobData | undefined = retryJob?.data;
  return {
    state,
    replies: data.replies ?? data.plan?.replies ?? retryData?.replies,
    // A completed send job's result says how many WeChat accepted (its data may predate the last try).
    sent: sentOf(state, data, job.returnvalue) ?? data.sent ?? data.plan?.sent,
    // An inbound job's outcome under its current name (a stored older name is read as the new one).
    result: readInboundResult(job.returnvalue) ?? job.returnvalue ?? undefined,
    // BullMQ keeps an earlier try's error on a job that then succeeded: that one is in `history`, not the outcome.
    failedReason: state === 'completed' ? undefined : job.failedReason || undefined,
    finished: iso(job.finishedOn),
    retryJob: retryJob
      ? {
          id: retryJob.id,
          state: await retryJob.getState(),
          sent: retryData?.sent,
          failedReason: retryJob.failedReason || undefined,
        }
      : undefined,
  };
}

/** What `pnpm queues show` prints: the job's line, its outcome and the error of each failed attempt. */
export type JobDetail = ReturnType<typeof summary> &
  Awaited<ReturnType<typeof outcomeOf>> & { data: StoredJobData; history: string[] };

/** Job data as shown: a WeCom notice's sync Token (it pulls the open_kfid's messages for 10 minutes) is not. */
function shownData(data: StoredJobData): StoredJobData {
  const message = data?.message;
  if (!message || typeof message.Token !== 'string') return data;
  return { ...data, message: { ...message, Token: '(hidden)' } };
}

/** Everything `pnpm queues show` says about a job. */
export async function jobDetail(job: Job, queues: Queues): Promise<JobDetail> {
  return {
    ...summary(job),
    ...(await outcomeOf(job, queues)),
    data: shownData(job.data),
    // One line per failed attempt, newest last: for sends, "errcode errmsg".
    history: (job.stacktrace ?? []).map(firstLine),
  };
}

/** An inbound job's outcome for humans. */
function resultLine(result: InboundResult): string {
  switch (result.action) {
    case 'replied':
      return `replied: ${result.replies} sent`;
    case 'requeued':
      return `handed off after ${result.sent} of ${result.replies} sent (${result.reason}): see the retry job`;
    case 'transferred':
      return 'transferred to 客服 (no replies)';
    case 'none':
      return 'no replies (no rule matched)';
    case 'handoff':
      return 'no replies: the user is with a human agent (handoff)';
    case 'history':
      return 'no replies: an old message a first WeCom pull found (history)';
    case 'pulled':
      return `pulled ${result.pages} page(s), ${result.messages} message(s) stored as jobs`;
    case 'joined':
      return 'no pull: another job was pulling this open_kfid (it went round once more)';
  }
}

function outcomeLine(detail: JobDetail): string {
  if (detail.failedReason) return `failed: ${detail.failedReason}`;
  const result = detail.state === 'completed' ? readInboundResult(detail.result) : undefined;
  return result ? resultLine(result) : detail.state;
}

/** `pnpm queues show` for humans: one line per fact, the replies and attempt errors as lists. */
export function jobText(detail: JobDetail): string {
  const message = detail.data.message;
  const retry = detail.retryJob;
  return [
    `job ${detail.id} (${detail.queue}, ${detail.state}) — ${detail.appId} / ${detail.user}`,
    `created ${detail.created}${detail.finished ? `, finished ${detail.finished}` : ''}, attempts ${detail.attempts}`,
    message ? `message: ${detail.type}${message.Content ? ` "${clip(String(message.Content), 200)}"` : ''}` : '',
    detail.replies
      ? `replies (${detail.replies.length}${detail.sent !== undefined ? `, ${detail.sent} accepted by WeChat` : ''}):\n${detail.replies.map((r, i) => `  ${i + 1}. ${describeReply(r)}`).join('\n')}`
      : '',
    `outcome: ${outcomeLine(detail)}`,
    retry
      ? `retry job ${retry.id}: ${retry.state}, ${retry.sent} sent${retry.failedReason ? `, failed: ${retry.failedReason}` : ''}`
      : '',
    detail.history.length ? `attempt errors:\n${detail.history.map((h) => `  - ${h}`).join('\n')}` : '',
  ]
    .filter(Boolean)
    .join('\n');
}
