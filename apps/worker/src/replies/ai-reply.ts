import { randomUUID } from 'node:crypto';
import { type AiAccount, AiAnswers, AiLimits, CLAIM_LEASE_MS, type StoredAnswer } from '@wx-kf/shared/ai';
import { ContentCheck, type WeChatClient, type WeChatHttp } from '@wx-kf/shared/api';
import type { Channels } from '@wx-kf/shared/channel';
import type { AccountConfig, AiConfig } from '@wx-kf/shared/config';
import type { InboundJobData, ReplyPlan } from '@wx-kf/shared/queue';
import type { RedisClient } from '@wx-kf/shared/redis';
import type { AiDecision, ReplyTemplate } from '@wx-kf/shared/rules';
import { DelayedError, type Job } from 'bullmq';
import type { WorkerHandoff } from '../processors/handoff.js';
import { checkReplies, invalid, MAX_JOB_REPLIES } from '../processors/job-data.js';
import type { SendReplies, SendReport } from '../processors/send.js';
import { type Ask, type AskDeps, askModel } from './ai-ask.js';
import { ModelClient } from './ai-model.js';
import { AnswerStream, type AnswerTarget } from './ai-stream.js';
import { resolveMedia } from './media.js';

export interface AiDeps extends AskDeps {
  /** The accounts whose rules use `ai`, with their endpoint and limits (aiAccounts: checked at start). */
  accounts: Map<string, AiAccount>;
  /** Their model clients (modelClients). */
  models: Map<string, ModelClient>;
  answers: AiAnswers;
  sendReplies: SendReplies;
  /** Each account's channel: its client uploads a rule's media. */
  channels: Channels;
  contentCheck: ContentCheck;
  handoff?: WorkerHandoff | undefined;
}

/** What the inbound job goes on with: the answer's plan (and how its sends went), or nothing to send. */
export type AiPlanned = { plan: ReplyPlan; report?: SendReport | undefined } | undefined;

/**
 * What every shard's AiReplier of a process shares: one model client per account that uses `ai`, the stored
 * answers, the limits and the content check; undefined when no account uses `ai`.
 */
export function aiParts(
  accounts: Map<string, AiAccount>,
  config: AiConfig,
  redis: RedisClient,
  http: WeChatHttp,
  client: WeChatClient,
) {
  if (accounts.size === 0) return undefined;
  const { timeoutMs, maxRetries } = config;
  return {
    accounts,
    models: new Map([...accounts].map(([appId, a]) => [appId, new ModelClient({ ...a, timeoutMs, maxRetries })])),
    config,
    answers: new AiAnswers(redis),
    limits: new AiLimits(redis),
    contentCheck: new ContentCheck(http, client),
  };
}

/** One answer under way: the model call, and the account and rule the fixed replies come from. */
interface Run extends Ask {
  account: AccountConfig;
}

/**
 * Messages answered by the model (rules `ai`). Exactly one answer per message: one worker at a time may ask the
 * model for it (a claim), and the answer is stored before its first message is sent, so a retried job sends the
 * stored answer. The answer fits the user's window (the sends left minus the rule's reserve), streams out a
 * message at a time, and falls back to the rule's `onError` replies (else a hand-over) when the model, a limit or
 * the content check says no.
 */
export class AiReplier {
  constructor(private readonly deps: AiDeps) {}

  /**
   * The answer for an inbound job whose rules chose `ai` (`decision`), or whose stored plan is the model's (a
   * retry: `decision` undefined). Waits as a delayed job while another worker holds the message's claim.
   */
  async reply(
    job: Job<InboundJobData>,
    token: string | undefined,
    data: InboundJobData,
    account: AccountConfig,
    decision: AiDecision | undefined,
  ): Promise<AiPlanned> {
    const { answers } = this.deps;
    const t: AnswerTarget = { job, data, touser: data.message.FromUserName, owner: randomUUID() };
    const jobId = String(job.id);
    const claim = await answers.claim(data.appId, t.touser, jobId, t.owner);
    if (claim.kind === 'busy') {
      await job.moveToDelayed(Date.now() + Math.min(claim.retryMs, 2000), token);
      throw new DelayedError();
    }
    if (claim.kind === 'stored') return this.fromStored(t, account, claim.answer);
    const renew = setInterval(() => {
      answers.renew(data.appId, t.touser, jobId, t.owner).catch(() => undefined);
    }, CLAIM_LEASE_MS / 3);
    renew.unref();
    try {
      // A retry whose answer was erased or has expired: what the job recorded is all there is.
      if (!decision) return data.plan ? { plan: data.plan } : undefined;
      return await this.answer(t, account, decision, token);
    } finally {
      clearInterval(renew);
      await answers.release(data.appId, t.touser, jobId, t.owner);
    }
  }

  /** The job sent every message of its answer: the stored copy is not needed any more. */
  done(appId: string, touser: string, jobId: string): Promise<void> {
    return this.deps.answers.drop(appId, touser, jobId);
  }

  /** The first time a message is answered: the budget, the limits, then the model. Runs under the claim. */
  private async answer(t: AnswerTarget, account: AccountConfig, decision: AiDecision, token?: string) {
    const { deps } = this;
    const { appId } = t.data;
    const settings = deps.accounts.get(appId);
    const model = deps.models.get(appId);
    if (!settings || !model) throw invalid(`account ${appId} has ai rules but no model settings on this worker`);
    const window = await deps.conversation.window(appId, t.touser);
    const budget = Math.min(window.left - decision.action.reserve, MAX_JOB_REPLIES);
    if (budget <= 0) {
      deps.metrics.answers.inc({ app_id: appId, outcome: 'no_send' });
      await this.note(t, `not asked: ${window.left} send(s) left, reserve ${decision.action.reserve}`);
      return undefined;
    }
    const stream = new AnswerStream(t, {
      answers: deps.answers,
      sendReplies: deps.sendReplies,
      // msg_sec_check is WeChat's: a wecom-kf corp has none (docs/wecom.md).
      contentCheck: decision.action.check && account.type !== 'wecom-kf' ? deps.contentCheck : undefined,
      logger: deps.logger,
    });
    const run: Run = { t, account, decision, stream, budget, settings, model };
    if (!(await deps.limits.withinUserRate(appId, t.touser, deps.config.userCallsPerHour))) {
      return this.fallback(run, 'user_rate');
    }
    if (settings.dailyTokens > 0 && (await deps.limits.tokensToday(appId)) >= settings.dailyTokens) {
      return this.fallback(run, 'budget');
    }
    const asked = await askModel(run, token, deps);
    if (asked.failure) return this.fallback(run, asked.failure.kind);
    if (asked.result?.finish === 'handover') {
      return this.handover(run, asked.result.reason || 'the model asked for a person');
    }
    if (stream.blocked) return this.fallback(run, stream.blocked.kind);
    return this.answered(run, asked.droppedBytes);
  }

  /** The model's answer is complete: stored as such, counted, and the timeline told what did not fit. */
  private async answered(run: Run, droppedBytes: number): Promise<AiPlanned> {
    const { t, stream, budget } = run;
    const { metrics } = this.deps;
    const app = { app_id: t.data.appId };
    await stream.finish({ kind: 'answer', ...(droppedBytes > 0 ? { droppedBytes } : {}) });
    metrics.answers.inc({ ...app, outcome: 'answer' });
    if (stream.replies.length > 1) metrics.split.inc(app);
    if (droppedBytes > 0) {
      metrics.clipped.inc(app);
      await this.note(
        t,
        `not sent: the last ${droppedBytes} bytes (${budget} message(s) allowed: sends left minus reserve)`,
      );
    }
    return stream.planned();
  }

  /** Instead of the model's answer: the rule's onError replies, else a hand-over (never silence). */
  private async fallback(run: Run, reason: string): Promise<AiPlanned> {
    const { t, decision, stream } = run;
    this.deps.metrics.failures.inc({ app_id: t.data.appId, kind: reason });
    if (!decision.onError) return this.handover(run, `model failed: ${reason}`);
    await stream.addFixed(await this.fixed(run, decision.onError), 'error');
    await stream.finish({ kind: 'error', reason });
    this.deps.metrics.answers.inc({ app_id: t.data.appId, outcome: 'on_error' });
    await this.note(t, `not answered (${reason}): onError sent`);
    return stream.planned();
  }

  /** The model asked for a person (or failed with no onError): the handover replies go, the handoff opens. */
  private async handover(run: Run, reason: string): Promise<AiPlanned> {
    const { t, decision, stream } = run;
    const { handoff } = this.deps;
    // Stored first (the job told to send them while the handoff is open), then the handoff opens.
    await stream.addFixed(await this.fixed(run, decision.handover), 'handover', { ignoreHandoff: true });
    if (handoff?.accounts.has(t.data.appId)) {
      await handoff.state.open(t.data.appId, t.touser, { reason: 'ai', force: true });
    }
    await stream.finish({ kind: 'handover', reason: reason.slice(0, 200) });
    this.deps.metrics.answers.inc({ app_id: t.data.appId, outcome: 'handover' });
    await this.note(t, `handed to a person: ${reason}`);
    return stream.planned();
  }

  /** A rule's fixed replies (onError, handover) made sendable, within the messages the budget has left. */
  private async fixed(run: Run, templates: ReplyTemplate[]) {
    const room = run.budget - run.stream.replies.length;
    if (room <= 0) return [];
    const uploaded: ReplyTemplate[] = [];
    for (const t of templates)
      uploaded.push(await resolveMedia(this.deps.channels.of(run.t.data.appId).client, run.t.data.appId, t));
    return checkReplies(uploaded, run.account).slice(0, room);
  }

  /** Sends a stored answer again (a retry): the model is not asked. */
  private async fromStored(t: AnswerTarget, account: AccountConfig, stored: StoredAnswer): Promise<AiPlanned> {
    if (!stored.done)
      await this.note(t, `answer interrupted (worker stopped): sending the ${stored.replies.length} stored`);
    if (stored.replies.length === 0) return undefined;
    const replies = checkReplies(stored.replies, account);
    const sent = Math.min(t.data.plan?.sent ?? 0, replies.length);
    const handover = stored.kind === 'handover' ? { ignoreHandoff: true } : {};
    return { plan: { replies, source: 'ai', sent, ...handover } };
  }

  /** A line in the user's timeline about the answer (what happened, never what was said). */
  private note(t: AnswerTarget, result: string): Promise<void> {
    return this.deps.conversation.settle(t.data.appId, t.touser, {
      entry: { kind: 'ai', summary: 'model answer', jobId: t.data.msgKey, result: result.slice(0, 120) },
    });
  }
}
