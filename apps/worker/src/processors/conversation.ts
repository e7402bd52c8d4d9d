import { TokenUnavailableError, TransportError, WeChatApiError } from '@wx-kf/shared/api';
import type { Channels } from '@wx-kf/shared/channel';
import type { Conversations, OutEntry, SentMessage, SettleEffect, Take } from '@wx-kf/shared/conversation';
import type { Logger } from '@wx-kf/shared/log';
import type { InboundJobData, OutboundJobData } from '@wx-kf/shared/queue';
import type { AccountType } from '@wx-kf/shared/wechat';
import { DelayedError, Job, type Queue } from 'bullmq';
import { jobIdOf } from './job-data.js';

/** How long a job whose turn has not come waits as a delayed job, unless the job before it promotes it sooner. */
export const TURN_WAIT_MS = 1000;
/** A head whose job cannot be found is taken as lost (a push never stored) once the waiting job is this old. */
export const LOST_HEAD_MS = 5000;
/** WeChat accepts Typing only within 30 s of the user's last interaction. */
const TYPING_WINDOW_MS = 30_000;

// Job states in which the head still owns its user's turn.
const LIVE = new Set(['active', 'waiting', 'delayed', 'prioritized', 'waiting-children']);

export interface ConversationDeps {
  conversations: Conversations;
  inbound: Queue<InboundJobData>;
  outbound: Queue<OutboundJobData>;
  /** Typing goes through the account's channel, where it has one. */
  channels: Channels;
  logger: Logger;
  /** Planning longer than this shows "typing…" (0 = never). */
  typingAfterMs: number;
}

/** A send's outcome as the window and the timeline take it. */
export interface SendOutcome {
  take?: Take;
  error?: unknown;
  entry?: OutEntry;
  release?: string | undefined;
  /** A message WeChat accepted: it joins the user's AI context (on accounts that keep one). */
  sent?: SentMessage | undefined;
  /** Accepted, but not counted by the platform (WeCom's welcome, sent with its event's code): the send goes back. */
  uncounted?: boolean;
}

/**
 * What a failed send does to the window: WeChat's refusal as its errcode's row says (45047 empties it, 45015
 * closes it), any other refusal gives the send back.
 */
function effectOf(error: unknown): SettleEffect | undefined {
  if (error instanceof WeChatApiError) return error.rule.window ?? 'refund'; // the channel's own table
  // An HTTP error status is an answer (nothing was sent), and without a token nothing left: the send goes back.
  // A timeout or a dropped connection may have been delivered: the send stays counted (never over-send).
  if (error instanceof TransportError && error.kind === 'http') return 'refund';
  if (error instanceof TokenUnavailableError) return 'refund';
  return undefined;
}

/** Promotes the user's next job out of its wait, if it is waiting (best effort: its wait ends anyway). */
async function promote(inbound: Queue<InboundJobData>, jobId: string): Promise<void> {
  if (!jobId) return;
  try {
    await (await Job.fromId(inbound, jobId))?.promote();
  } catch {
    // Not delayed (it is running, or it is about to check again): nothing to do.
  }
}

/** Whether the head's message still holds its user's turn (running, retrying, or its replies being retried). */
async function holds(deps: ConversationDeps, head: string, waitingSince: number): Promise<boolean> {
  const state = await deps.inbound.getJobState(head);
  if (LIVE.has(state)) return true;
  if (state === 'completed') return LIVE.has(await deps.outbound.getJobState(`${head}-r`));
  if (state === 'failed') return false;
  return Date.now() - waitingSince < LOST_HEAD_MS; // not stored (yet): the add may still be on its way
}

/**
 * Returns when it is this inbound job's turn (and applies its window grant, for jobs the ingress did not
 * store); otherwise moves the job to delayed, without holding a worker slot, and throws DelayedError. With
 * `take`, the turn also takes the first send from the window (same round trip) and returns it: the caller
 * sends with it or gives it back.
 */
async function awaitTurn(
  deps: ConversationDeps,
  job: Job,
  token: string | undefined,
  type: AccountType,
  data: InboundJobData,
  take: boolean,
): Promise<Take | undefined> {
  const { conversations, logger } = deps;
  const { appId, message } = data;
  const jobId = jobIdOf(job);
  const turn = (withTake: boolean) => conversations.turn(appId, type, jobId, message, { take: withTake });
  let t = await turn(take);
  // A job that has waited a while checks that the head is still alive; a dead head is dropped.
  for (let i = 0; !t.go && i < 3 && Date.now() - job.timestamp > TURN_WAIT_MS; i++) {
    if (await holds(deps, t.head, job.timestamp)) break;
    logger.warn({ appId, msgKey: data.msgKey, head: t.head }, 'order: dropped a finished or lost message ahead');
    await conversations.dropHead(appId, message.FromUserName, t.head);
    t = await turn(take);
  }
  if (t.go) return t.take;
  await job.moveToDelayed(Date.now() + TURN_WAIT_MS, token);
  // The head may have finished between the check and the move: then no one promotes this job but itself.
  if ((await turn(false)).go) await job.promote().catch(() => undefined);
  throw new DelayedError();
}

/** Records a send's outcome: the window learns from WeChat's answer, the timeline gets an entry. */
async function settle(deps: ConversationDeps, appId: string, touser: string, outcome: SendOutcome): Promise<void> {
  const { take, error, entry, release, sent } = outcome;
  const effect = error === undefined ? (outcome.uncounted ? 'refund' : undefined) : effectOf(error);
  const taken = take?.ok ? take : undefined;
  // A refund only gives back what was taken; closing applies whatever was taken.
  const applied = effect === 'refund' && !taken ? undefined : effect;
  const next = await deps.conversations.settle(appId, touser, {
    ...(applied ? { effect: applied } : {}),
    ...(taken ? { taken } : {}),
    ...(entry ? { entry } : {}),
    ...(release ? { release } : {}),
    ...(sent && error === undefined ? { sent } : {}),
  });
  await promote(deps.inbound, next);
}

/** Shows "typing…" once if planning outlasts the threshold; returns the cancel. Best effort, never throws. */
function showTyping(deps: ConversationDeps, appId: string, touser: string, interactedAt: number): () => void {
  if (deps.typingAfterMs <= 0) return () => undefined;
  const timer = setTimeout(() => {
    if (Date.now() - interactedAt > TYPING_WINDOW_MS) return;
    deps.channels
      .of(appId)
      .typing?.(appId, touser, true)
      .catch((error: Error) => {
        deps.logger.debug({ appId, err: error.message }, 'typing refused');
      });
  }, deps.typingAfterMs);
  timer.unref();
  return () => clearTimeout(timer);
}

/**
 * The worker's side of a user's conversation: the order of their messages (a job waits, as a delayed job, until
 * it is the head of its user's order; finishing releases the next and promotes it), the send window around
 * each send, and typing while a message is planned.
 */
export function conversationHooks(deps: ConversationDeps) {
  const { conversations, logger } = deps;
  return {
    /** Waits for this inbound job's turn (as a delayed job), with `take` taking its first send too (awaitTurn). */
    awaitTurn: (job: Job, token: string | undefined, type: AccountType, data: InboundJobData, take = false) =>
      awaitTurn(deps, job, token, type, data, take),

    /**
     * Takes the job out of its user's order and wakes the next one; `taken`, a send taken for it and not used,
     * goes back to the window in the same round trip.
     */
    async release(appId: string, openid: string, jobId: string, taken?: Take): Promise<void> {
      const refund = taken?.ok ? { effect: 'refund' as const, taken } : {};
      await promote(deps.inbound, await conversations.settle(appId, openid, { ...refund, release: jobId }));
    },

    /**
     * Gives back a send taken and not used (the message's plan failed or must wait). Best effort: on a Redis
     * error the send stays taken (the ledger errs towards fewer sends) and the caller's own outcome stands.
     */
    async giveBack(appId: string, openid: string, taken: Take | undefined): Promise<void> {
      if (!taken?.ok) return;
      await conversations.settle(appId, openid, { effect: 'refund', taken }).catch((error: Error) => {
        logger.warn({ appId, err: error.message }, 'a send taken for a reply could not be given back');
      });
    },

    /** The user's window as the ledger has it now (a handler's `ctx.window`). */
    window: (appId: string, touser: string) => conversations.window(appId, touser),

    /** Takes one send from the user's window before it goes out. */
    take: (appId: string, touser: string) => conversations.take(appId, touser),

    /** Records a send's outcome: the window learns from WeChat's answer, the timeline gets an entry. */
    settle: (appId: string, touser: string, outcome: SendOutcome) => settle(deps, appId, touser, outcome),

    /** Shows "typing…" once if planning outlasts the threshold; returns the cancel. Best effort, never throws. */
    typing: (appId: string, touser: string, interactedAt: number) => showTyping(deps, appId, touser, interactedAt),
  };
}

export type ConversationHooks = ReturnType<typeof conversationHooks>;
