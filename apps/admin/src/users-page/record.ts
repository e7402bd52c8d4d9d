import type { Conversations, TimelineEntry, WindowView } from '@wx-kf/shared/conversation';
import type { HandoffState, Handoffs } from '@wx-kf/shared/handoff';
import { readInboundResult, type StoredJobData } from '@wx-kf/shared/queue';
import type { Job } from 'bullmq';
import type { Queues } from '../queues.js';

/** How a timeline row ended, for the eye: fine, waiting, refused or failed, or with a human. */
export type Tone = 'ok' | 'wait' | 'bad' | 'human';

/** A timeline entry as the page shows it: what became of it, and its job while the queue keeps it. */
export interface TimelineRow extends TimelineEntry {
  outcome: string;
  tone: Tone;
  /** A message the ingress transferred to 客服, or one the bot stayed silent on while the user was with a human. */
  transfer: boolean;
  job?: { queue: string; id: string } | undefined;
}

/** What the page shows of one user. */
export interface UserRecord {
  appId: string;
  openid: string;
  window: WindowView;
  /** Subscribe-message grants left, by template id (a notification after the window needs one). */
  grants: Record<string, number>;
  /** The stored handoff: open, or closed a short while ago; undefined when there is none. */
  handoff: HandoffState | undefined;
  timeline: TimelineRow[];
}

/** Jobs looked up per page (the newest entries' jobs; older ones show the timeline's own result). */
const MAX_JOB_LOOKUPS = 100;

/** An inbound message's outcome, from its job; undefined when the job says nothing more than the timeline. */
async function inboundOutcome(job: Job): Promise<Pick<TimelineRow, 'outcome' | 'tone' | 'transfer'> | undefined> {
  const data: StoredJobData = job.data;
  const result = readInboundResult(job.returnvalue);
  if (data.transferred === true || result?.action === 'transferred') {
    return { outcome: 'transferred to 客服 (a human agent)', tone: 'human', transfer: true };
  }
  if (result?.action === 'handoff') {
    return { outcome: 'with a human agent: the bot sent nothing', tone: 'human', transfer: true };
  }
  if (result?.action === 'replied') {
    return {
      outcome: `answered (${result.replies} repl${result.replies === 1 ? 'y' : 'ies'})`,
      tone: 'ok',
      transfer: false,
    };
  }
  if (result?.action === 'requeued') {
    return {
      outcome: `${result.sent} of ${result.replies} sent; the rest retried in ${result.outboundJobId}`,
      tone: 'wait',
      transfer: false,
    };
  }
  if (result?.action === 'none') return { outcome: 'no reply (nothing to send)', tone: 'ok', transfer: false };
  const state = await job.getState();
  if (state === 'failed') return { outcome: `failed: ${job.failedReason}`, tone: 'bad', transfer: false };
  if (state !== 'completed') return { outcome: `${state} in the queue`, tone: 'wait', transfer: false };
  return undefined;
}

/** A send's outcome as the timeline recorded it. */
function outboundTone(result: string): Tone {
  if (result === 'sent') return 'ok';
  return result === '' ? 'wait' : 'bad';
}

/**
 * One user's window, handoff and timeline, each entry with its outcome and a link to its job. A user's jobs all
 * live on the user's shard (their pushes, the retries of their replies, send-API messages to them), so a lookup
 * costs two reads per job id, on one shard.
 */
export async function userRecord(
  services: { conversations: Conversations; handoffs: Handoffs; queues: Queues },
  appId: string,
  openid: string,
): Promise<UserRecord> {
  const { conversations, handoffs, queues } = services;
  const [view, handoff] = await Promise.all([conversations.view(appId, openid), handoffs.get(appId, openid)]);
  const shard = queues.keys.userShard(appId, openid);
  const ofShard = [queues.inbounds[shard], queues.outbounds[shard]].filter((q) => q !== undefined);
  const ids = [...new Set(view.timeline.map((e) => e.jobId).filter(Boolean))].slice(-MAX_JOB_LOOKUPS);
  const jobs = new Map(await Promise.all(ids.map(async (id) => [id, await queues.find(id, ofShard)] as const)));
  const timeline = await Promise.all(
    view.timeline.map(async (entry): Promise<TimelineRow> => {
      const job = jobs.get(entry.jobId);
      const link = job?.id ? { queue: job.queueName, id: job.id } : undefined;
      if (entry.direction === 'out') {
        return {
          ...entry,
          outcome: entry.result || 'pending',
          tone: outboundTone(entry.result),
          transfer: false,
          job: link,
        };
      }
      const known = job ? await inboundOutcome(job) : undefined;
      const transfer = entry.result === 'transferred'; // recorded by the ingress: still known when the job is gone
      return { ...entry, outcome: entry.result, tone: 'ok', transfer, ...known, job: link };
    }),
  );
  return { appId, openid, window: view.window, grants: view.grants, handoff, timeline };
}
