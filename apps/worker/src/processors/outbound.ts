import type { AccountConfig } from '@wx-kf/shared/config';
import type { OutboundJobData } from '@wx-kf/shared/queue';
import { DelayedError, type Job, UnrecoverableError } from 'bullmq';
import type { WorkerHandoff } from './handoff.js';
import { checkOutboundJob, invalid } from './job-data.js';
import type { SendReplies } from './send.js';

/**
 * Sends an outbound job's replies in order (the retries of a push's replies, and messages from the send API).
 * The job's data is checked first (account, touser, every reply with the send API's schema): a bad job fails
 * at once and nothing is sent. Progress (`sent`) is saved after each accepted reply, so a retry resumes after
 * the last one WeChat accepted. Retryable errors throw (BullMQ backs off with jitter); permanent ones fail the
 * job at once with `errcode errmsg`; a paused account or a token cool-down delays the job.
 */
export function outboundProcessor(
  sendReplies: SendReplies,
  accounts: Map<string, AccountConfig>,
  handoff?: WorkerHandoff,
) {
  return async (job: Job<OutboundJobData>, token?: string): Promise<{ sent: number; handoff?: true }> => {
    const { data } = checkOutboundJob(job.data, accounts);
    // While the user is with a human: a bot reply still owed is dropped; a send-API message fails (unless forced).
    if (
      handoff?.accounts.has(data.appId) &&
      !data.ignoreHandoff &&
      (await handoff.state.isOpen(data.appId, data.touser))
    ) {
      if (data.source === 'api') throw invalid('handoff: the user is with a human agent (ignoreHandoff sends anyway)');
      return { sent: data.sent, handoff: true };
    }
    const { sent, stop } = await sendReplies(data, data.sent, (n) => job.updateData({ ...data, sent: n }));
    if (!stop) return { sent };
    if (stop.kind === 'permanent') throw new UnrecoverableError(stop.reason);
    if (stop.kind === 'retry') throw stop.error;
    await job.moveToDelayed(Date.now() + stop.delayMs, token);
    throw new DelayedError();
  };
}
