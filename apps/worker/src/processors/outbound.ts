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
  /** A retry job's last attempt failed: its user's next message may go (conversation.ts release). */
  onFinalFailure?: (data: OutboundJobData, release: string) => Promise<void>,
) {
  return async (job: Job<OutboundJobData>, token?: string): Promise<{ sent: number; handoff?: true }> => {
    const { data } = checkOutboundJob(job.data, accounts);
    // The retry of a message's replies (`<inbound id>-r`) holds its user's turn until it ends.
    const release = job.id === `${data.msgKey}-r` ? data.msgKey : undefined;
    // While the user is with a human: a bot reply still owed is dropped (and gives up its user's turn); a
    // send-API message fails (unless forced).
    if (
      handoff?.accounts.has(data.appId) &&
      !data.ignoreHandoff &&
      (await handoff.state.isOpen(data.appId, data.touser))
    ) {
      if (release) await onFinalFailure?.(data, release);
      if (data.source === 'api') throw invalid('handoff: the user is with a human agent (ignoreHandoff sends anyway)');
      return { sent: data.sent, handoff: true };
    }
    const { sent, stop } = await sendReplies({ ...data, release }, data.sent, (n) =>
      job.updateData({ ...data, sent: n }),
    );
    if (!stop) return { sent };
    if (stop.kind === 'permanent') throw new UnrecoverableError(stop.reason);
    if (stop.kind === 'retry') {
      if (release && job.attemptsMade + 1 >= (job.opts.attempts ?? 1)) await onFinalFailure?.(data, release);
      throw stop.error;
    }
    await job.moveToDelayed(Date.now() + stop.delayMs, token);
    throw new DelayedError();
  };
}
