import type { AiAnswers, StoredAnswer } from '@wx-kf/shared/ai';
import { type ContentCheck, TransportError, WeChatApiError } from '@wx-kf/shared/api';
import type { Logger } from '@wx-kf/shared/log';
import type { InboundJobData, ReplyPlan } from '@wx-kf/shared/queue';
import type { ReplyItem } from '@wx-kf/shared/wechat';
import type { Job } from 'bullmq';
import type { SendReplies, SendReport, SendStop } from '../processors/send.js';
import { wecomVia } from '../processors/wecom.js';

/** The claim on a user's message was taken over by another worker: this one stops (the other answers). */
export class ClaimLostError extends Error {
  override readonly name = 'ClaimLostError';
  constructor(jobId: string) {
    super(`another worker answers ${jobId} now (this worker's claim lapsed)`);
  }
}

/** What the content check said about a message that may not go out. */
export type Blocked = { kind: 'risky'; label: number } | { kind: 'check_error'; error: string };

export interface AnswerStreamDeps {
  answers: AiAnswers;
  sendReplies: SendReplies;
  /** Set when the rule says `check: true` (Mini Programs): every message passes msg_sec_check before it is stored. */
  contentCheck?: ContentCheck | undefined;
  logger: Logger;
}

export interface AnswerTarget {
  job: Job<InboundJobData>;
  data: InboundJobData;
  touser: string;
  /** This attempt's claim owner. */
  owner: string;
}

const CHECK_ATTEMPTS = 3;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const textReply = (content: string): ReplyItem => ({ msgtype: 'text', text: { content } });

/**
 * One message's answer as it is produced: each message is checked (when the rule says so), added to the stored
 * answer (before it is sent: a retry sends the stored answer and never asks the model again), then sent in
 * order while the model goes on writing. A send that must wait or failed stops the sending, not the storing:
 * the caller hands what is left to the outbound queue.
 */
export class AnswerStream {
  readonly replies: ReplyItem[] = [];
  sent = 0;
  /** Why sending stopped early, if it did. */
  stop: SendStop | undefined;
  /** Why the model's answer may not go out (the content check), if so. */
  blocked: Blocked | undefined;
  private chain: Promise<void> = Promise.resolve();
  /** A send's unexpected error (Redis): the job fails with it once the stream ends, and its retry resumes. */
  private failed: unknown;
  private ignoreHandoff = false;
  /** Called once the first message went out (typing ends with it on WeChat's side). */
  onFirstSend: (() => void) | undefined;

  constructor(
    private readonly target: AnswerTarget,
    private readonly deps: AnswerStreamDeps,
  ) {}

  private get ids() {
    const { data, touser, job } = this.target;
    return { appId: data.appId, touser, jobId: String(job.id) };
  }

  /** True when no more of the model's answer should be produced (blocked, or a send failed for good). */
  get stopped(): boolean {
    return this.blocked !== undefined || this.stop?.kind === 'permanent';
  }

  /** A message of the model's answer: checked, stored, then sent. False when the answer should stop. */
  async add(text: string): Promise<boolean> {
    if (this.stopped) return false;
    if (this.deps.contentCheck) {
      this.blocked = await this.check(text);
      if (this.blocked) return false;
    }
    await this.push([textReply(text)], 'answer');
    return !this.stopped;
  }

  /** Replies that are not the model's (onError, handover): stored and sent after what went before. */
  async addFixed(items: ReplyItem[], kind: StoredAnswer['kind'], options: { ignoreHandoff?: boolean } = {}) {
    if (options.ignoreHandoff) this.ignoreHandoff = true;
    await this.push(items, kind);
  }

  /** Stores the answer as complete (ending the claim) and waits for the sends under way. */
  async finish(meta: Omit<StoredAnswer, 'replies' | 'done'>): Promise<void> {
    await this.store({ ...meta, replies: this.replies, done: true }, true);
    await this.chain;
    if (this.failed !== undefined) throw this.failed;
  }

  /** The plan the inbound job goes on with: every reply, how many were accepted, and a stop if one happened. */
  planned(): { plan: ReplyPlan; report?: SendReport | undefined } {
    const plan: ReplyPlan = {
      replies: this.replies,
      source: 'ai',
      sent: this.sent,
      ...(this.ignoreHandoff ? { ignoreHandoff: true } : {}),
    };
    return { plan, report: this.stop ? { sent: this.sent, stop: this.stop } : undefined };
  }

  private async push(items: ReplyItem[], kind: StoredAnswer['kind']): Promise<void> {
    const from = this.replies.length;
    this.replies.push(...items);
    await this.store({ kind, replies: this.replies, done: false }, false);
    for (let i = from; i < this.replies.length; i++) {
      const index = i;
      this.chain = this.chain
        .then(() => (this.failed === undefined ? this.sendAt(index) : undefined))
        .catch((error: unknown) => {
          this.failed ??= error;
        });
    }
  }

  private async store(answer: StoredAnswer, release: boolean): Promise<void> {
    const { appId, touser, jobId } = this.ids;
    if (!(await this.deps.answers.store(appId, touser, jobId, this.target.owner, answer, release))) {
      throw new ClaimLostError(jobId);
    }
  }

  /** Sends reply `i` (the ones before it are sent), and records the progress in the job for a retry. */
  private async sendAt(i: number): Promise<void> {
    if (this.stop) return;
    const { job, data, touser } = this.target;
    const { appId, msgKey, receivedAt } = data;
    const replies = this.replies.slice(0, i + 1);
    const report = await this.deps.sendReplies(
      { appId, touser, msgKey, replies, receivedAt, ...wecomVia(data) },
      i,
      async () => undefined,
    );
    if (report.stop) {
      this.stop = report.stop;
      return;
    }
    this.sent = i + 1;
    if (i === 0) this.onFirstSend?.();
    const plan: ReplyPlan = {
      replies,
      source: 'ai',
      sent: this.sent,
      ...(this.ignoreHandoff ? { ignoreHandoff: true } : {}),
    };
    await job.updateData({ ...data, plan });
  }

  /** msg_sec_check on one message: transient failures are tried again; a lasting one blocks (fail closed). */
  private async check(content: string): Promise<Blocked | undefined> {
    const { appId, touser } = this.ids;
    let last = '';
    for (let attempt = 1; attempt <= CHECK_ATTEMPTS; attempt++) {
      try {
        const verdict = await this.deps.contentCheck?.check(appId, { openid: touser, content });
        return verdict?.suggest === 'risky' ? { kind: 'risky', label: verdict.label } : undefined;
      } catch (error) {
        last = error instanceof Error ? error.message : String(error);
        const transient =
          error instanceof TransportError || (error instanceof WeChatApiError && error.action === 'retry');
        if (!transient) break;
        await sleep(200 * attempt);
      }
    }
    this.deps.logger.warn({ appId, err: last.slice(0, 120) }, 'msg_sec_check failed: the answer is not sent');
    return { kind: 'check_error', error: last.slice(0, 80) };
  }
}
