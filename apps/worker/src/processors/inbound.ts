import type { Channels } from '@wx-kf/shared/channel';
import type { AccountConfig } from '@wx-kf/shared/config';
import type { Take } from '@wx-kf/shared/conversation';
import type { Logger } from '@wx-kf/shared/log';
import {
  type InboundJobData,
  type InboundResult,
  OUTBOUND_JOB_OPTIONS,
  type OutboundJobData,
  type ReplyPlan,
} from '@wx-kf/shared/queue';
import type { ReplyRules } from '@wx-kf/shared/rules';
import { inSpan } from '@wx-kf/shared/tracing';
import { isPullNotice } from '@wx-kf/shared/wecom';
import { Backoffs, type DefaultJobOptions, DelayedError, type Job, type Queue, UnrecoverableError } from 'bullmq';
import type { AiReplier } from '../replies/ai-reply.js';
import type { MessageHandler } from '../replies/handler.js';
import type { ConversationHooks } from './conversation.js';
import { applyKfEvent, isKfEvent, type WorkerHandoff } from './handoff.js';
import { checkInboundJob, jobIdOf } from './job-data.js';
import { type PlanDeps, planFresh } from './plan.js';
import type { Reupload, SendReplies, SendReport } from './send.js';
import { handOverAfterReplies, handOverOnStop, wecomSilence, wecomTransfer, wecomVia } from './wecom.js';

export interface InboundDeps {
  accounts: Map<string, AccountConfig>;
  rules: Map<string, ReplyRules>;
  handler?: MessageHandler | undefined;
  outbound: Queue<OutboundJobData>;
  /** Each account's channel (WeChat's push channel, WeCom's pull channel). */
  channels: Channels;
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
  /** WeCom: a pull notice's job pulls the open_kfid's messages (processors/pull.ts). */
  pull?: ((job: Job<InboundJobData>) => Promise<InboundResult>) | undefined;
}

/** How a job ended: the shared queue contract, which `pnpm queues show` reads back. */
export type { InboundResult };

/** What a plan's retry job carries over: the replies, their source, and a hand-over's pass through the handoff. */
const carried = ({ replies, source, ignoreHandoff }: ReplyPlan) => ({
  replies,
  source,
  ...(ignoreHandoff ? { ignoreHandoff } : {}),
});

/** The processor's parts, with the outbound job options and the add of an outbound job. */
type Inbound = InboundDeps & PlanDeps & { jobOptions: DefaultJobOptions };

/** An inbound job's checked data (job-data.ts). */
type Checked = ReturnType<typeof checkInboundJob>;

/** A plan to send: the stored one (a retry), the model's (with how far its send got) or a fresh one. */
interface Ready {
  plan: ReplyPlan;
  report?: SendReport | undefined;
  reupload?: Reupload | undefined;
  taken?: Take | undefined;
}

/** Takes the job out of its user's order (giving back `taken`) and ends it with `result`, nothing sent. */
async function endWith(c: Inbound, job: Job, checked: Checked, result: InboundResult, taken?: Take) {
  await c.conversation?.release(checked.data.appId, checked.touser, jobIdOf(job), taken);
  return result;
}

/**
 * A message that gets no reply before any plan: a transfer, a kf session event (the agents' tool reporting,
 * not the user speaking: it changes the handoff), a user with a human (invariant 12: the bot sends nothing), or on
 * WeCom what is not the customer speaking now (history, an agent's message, a system event; only recorded).
 */
async function noReply(c: Inbound, job: Job, checked: Checked): Promise<InboundResult | undefined> {
  const { data, touser } = checked;
  const { appId } = data;
  const wecom = checked.account.type === 'wecom-kf';
  // Sends nothing, so it need not wait for its turn; it only lets the user's next message go.
  if (data.transferred) return endWith(c, job, checked, { action: 'transferred' });
  const silent = wecom ? wecomSilence(data, Boolean(c.handoff?.accounts.has(appId))) : undefined;
  if (silent) return endWith(c, job, checked, { action: silent });
  if (c.handoff?.accounts.has(appId)) {
    const kfEvent = isKfEvent(data.message);
    if (kfEvent) await applyKfEvent(c.handoff.state, appId, data.message);
    // The model's hand-over replies (stored with the plan) still go: the model opened this handoff.
    if (kfEvent || (!data.plan?.ignoreHandoff && (await c.handoff.state.isOpen(appId, touser)))) {
      return endWith(c, job, checked, { action: 'handoff' });
    }
  }
  return undefined;
}

/** The plan, in the user's turn: the stored one, the model's answer, or a fresh one; or the job's end. */
async function planInTurn(
  c: Inbound,
  job: Job<InboundJobData>,
  token: string | undefined,
  checked: Checked,
): Promise<Ready | InboundResult> {
  const { data, account } = checked;
  // A retry of a part-sent plan resumes it; planning again could change the replies (a handler) or resend.
  const plan = data.plan;
  // The rules' decision needs nothing but the message, so it is made first: when it has replies, the turn
  // also takes the first send (one round trip). A handler runs in the user's turn and takes sends as it sends.
  const decision = plan || c.handler ? undefined : c.rules.get(data.appId)?.decide(data.message);
  const sends = plan ? plan.sent < plan.replies.length : decision?.kind === 'reply' && decision.replies.length > 0;
  // The user's earlier messages are answered first (invariant 10): until then this job waits as delayed.
  const taken = await inSpan('turn', {}, () => c.conversation?.awaitTurn(job, token, account.type, data, sends));

  // WeCom: a transfer rule moves the session here, in the customer's turn (WeChat's ingress answered its own).
  if (decision?.kind === 'transfer' && account.type === 'wecom-kf') {
    return endWith(c, job, checked, await wecomTransfer(c, checked, decision), taken);
  }
  // The model's answer is stored before it is sent, and a retry sends the stored one (replies/ai-reply.ts).
  if (c.ai && (decision?.kind === 'ai' || plan?.source === 'ai')) {
    const answered = await c.ai.reply(job, token, data, account, decision?.kind === 'ai' ? decision : undefined);
    return answered ? { ...answered, taken } : endWith(c, job, checked, { action: 'none' });
  }
  if (plan) return { plan, taken };
  const source = c.handler ? 'handler' : 'rules';
  const planned = await inSpan('plan', { 'wxkf.plan.source': source }, () =>
    planFresh(c, job, token, { data, account, decision, taken }),
  );
  if (planned.replies.length === 0) return endWith(c, job, checked, { action: 'none' }, taken);
  return { plan: { replies: planned.replies, source, sent: 0 }, reupload: planned.reupload, taken };
}

/** The outbound job's first try is a retry of this send: BullMQ's backoff for it, as for its later retries. */
function firstRetryDelay(jobOptions: DefaultJobOptions, job: Job, error: Error): number {
  const backoff = jobOptions.backoff === undefined ? undefined : Backoffs.normalize(jobOptions.backoff);
  return backoff ? Number(Backoffs.calculate(backoff, 1, error, job)) : 0;
}

/**
 * Sends the plan in this job and says how it ended; what must wait moves to one outbound job (`<id>-r`), and a
 * permanent refusal fails this job.
 */
async function sendPlan(c: Inbound, job: Job<InboundJobData>, checked: Checked, ready: Ready): Promise<InboundResult> {
  const { data, touser } = checked;
  const { appId, msgKey, receivedAt } = data;
  const { plan, report, reupload, taken } = ready;
  const via = wecomVia(data);
  const { sent, stop } = report?.stop
    ? report
    : await c.sendReplies(
        { appId, touser, msgKey, replies: plan.replies, receivedAt, release: job.id, taken, ...via },
        plan.sent,
        (n) => job.updateData({ ...data, plan: { ...plan, sent: n } }),
        reupload,
      );
  if (!stop) {
    if (plan.source === 'ai') await c.ai?.done(appId, touser, jobIdOf(job));
    // The model's hand-over replies are out: WeCom's session moves to the queue only now (else 95018 for them).
    if (plan.ignoreHandoff) await handOverAfterReplies(c, appId, touser, msgKey, via);
    return { action: 'replied', replies: plan.replies.length };
  }
  // A channel that owns the session (WeCom) moves it now, whatever became of the hand-over replies: else the bot
  // stays silent (the handoff is open) while no person is asked. What was not sent is dropped.
  if (plan.ignoreHandoff && c.channels.of(appId).handOver) {
    await handOverOnStop(c, { appId, touser, msgKey, via }, stop);
    if (plan.source === 'ai') await c.ai?.done(appId, touser, jobIdOf(job));
    return endWith(c, job, checked, { action: 'handoff' }); // the user's next message may go (to the person)
  }
  if (stop.kind === 'permanent') throw new UnrecoverableError(stop.reason);
  const outboundJobId = await c.enqueue(
    { appId, touser, msgKey, sent, receivedAt, ...carried(plan), ...via },
    `${job.id}-r`,
    stop.kind === 'wait' ? stop.delayMs : firstRetryDelay(c.jobOptions, job, stop.error),
  );
  const reason = stop.kind === 'wait' ? stop.reason : stop.error.message;
  c.logger.info({ appId, msgKey, sent, outboundJobId, reason }, 'replies handed to the outbound queue');
  return { action: 'requeued', replies: plan.replies.length, sent, outboundJobId, reason };
}

/**
 * Turns a stored push into a reply plan (rules, or the user's handler) and sends it at once, in this job:
 * one job per message while WeChat accepts. When a send must wait (a retryable error, a paused account, a
 * token cool-down), the replies not yet accepted move to one outbound job, which owns the retries; its id
 * derives from the inbound one, so a message never gets two. A permanent refusal fails this job.
 * A plan holds only custom/send bodies: a rules file's media are uploaded before, so no job names a file.
 */
export function inboundProcessor(deps: InboundDeps) {
  const jobOptions = deps.outboundJobOptions ?? OUTBOUND_JOB_OPTIONS;
  const enqueue = async (data: OutboundJobData, jobId?: string, delay?: number) => {
    const job = await deps.outbound.add('send', data, {
      ...jobOptions,
      ...(jobId ? { jobId } : {}),
      ...(delay ? { delay } : {}),
    });
    return jobIdOf(job);
  };
  const c: Inbound = { ...deps, jobOptions, enqueue };

  const process = async (job: Job<InboundJobData>, token?: string): Promise<InboundResult> => {
    if (c.pull && isPullNotice(job.data.message ?? {})) return c.pull(job);
    const checked = checkInboundJob(job.data, c.accounts);
    const ended = await noReply(c, job, checked);
    if (ended) return ended;
    const ready = await planInTurn(c, job, token, checked);
    return 'action' in ready ? ready : sendPlan(c, job, checked, ready);
  };

  return async (job: Job<InboundJobData>, token?: string): Promise<InboundResult> => {
    try {
      return await process(job, token);
    } catch (error) {
      // A message failing for good lets the user's next one go (a retry keeps its turn; a wait is no failure).
      const final = error instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      const user: unknown = job.data?.message?.FromUserName;
      const { conversation } = deps;
      if (conversation && final && !(error instanceof DelayedError) && typeof user === 'string' && job.id) {
        await conversation.release(job.data.appId, user, job.id).catch(() => undefined);
      }
      throw error;
    }
  };
}
