import type { OutboundJobData } from '@wx-kf/shared';
import { DelayedError, type Job, UnrecoverableError } from 'bullmq';
import type { SendReplies } from './send.js';

/**
 * Sends an outbound job's replies in order (the retries of a push's replies, and messages from the send API).
 * Progress (`sent`) is saved after each accepted reply, so a retry resumes after the last one WeChat accepted.
 * Retryable errors throw (BullMQ backs off with jitter); permanent ones fail the job at once with
 * `errcode errmsg`; a paused account or a token cool-down delays the job.
 */
export function outboundProcessor(sendReplies: SendReplies) {
  return async (job: Job<OutboundJobData>, token?: string): Promise<{ sent: number }> => {
    const { sent, stop } = await sendReplies(job.data, job.data.sent, (n) => job.updateData({ ...job.data, sent: n }));
    if (!stop) return { sent };
    if (stop.kind === 'permanent') throw new UnrecoverableError(stop.reason);
    if (stop.kind === 'retry') throw stop.error;
    await job.moveToDelayed(Date.now() + stop.delayMs, token);
    throw new DelayedError();
  };
}
