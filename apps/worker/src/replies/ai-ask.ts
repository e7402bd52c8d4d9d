import {
  type AiAccount,
  type AiLimits,
  AnswerSplitter,
  type ChatMessage,
  readHistory,
  requestMessages,
  userContent,
} from '@wx-kf/shared/ai';
import type { AiConfig } from '@wx-kf/shared/config';
import { actionTime, type Conversations } from '@wx-kf/shared/conversation';
import type { Logger } from '@wx-kf/shared/log';
import type { AiDecision } from '@wx-kf/shared/rules';
import { DelayedError } from 'bullmq';
import type { ConversationHooks } from '../processors/conversation.js';
import type { AiMetrics } from './ai-metrics.js';
import { type ModelClient, ModelError, type ModelResult } from './ai-model.js';
import type { AnswerStream, AnswerTarget } from './ai-stream.js';

/** How long a model call waits in the job for a slot before the job waits as a delayed one (never failed). */
export const SLOT_WAIT_MS = 20_000;

/** One message's model call: who asks, under which rule, within how many messages, through which client. */
export interface Ask {
  t: AnswerTarget;
  decision: AiDecision;
  stream: AnswerStream;
  /** Messages the answer may use: the sends left minus the reserve. */
  budget: number;
  settings: AiAccount;
  model: ModelClient;
}

/** How the call ended: the model's result or its failure, and what of the answer did not fit. */
export interface Asked {
  result?: ModelResult | undefined;
  failure?: ModelError | undefined;
  droppedBytes: number;
}

export interface AskDeps {
  config: AiConfig;
  limits: AiLimits;
  conversations: Conversations;
  conversation: ConversationHooks;
  metrics: AiMetrics;
  logger: Logger;
}

/** A call's tokens: the endpoint's count, or an estimate (a CJK character or 4 other characters a token). */
function tokensOf(result: ModelResult | undefined, prompt: ChatMessage[], answer: string) {
  if (result?.usage) return result.usage;
  const estimate = (s: string) => Math.ceil((s.match(/[\u2e80-\u9fff]/g)?.length ?? 0) + s.length / 4);
  return { in: estimate(prompt.map((m) => m.content).join('')), out: estimate(answer) };
}

/** The request's messages: the rule's prompt with the budget, the kept conversation, the message itself. */
async function messagesFor(a: Ask, deps: AskDeps): Promise<ChatMessage[]> {
  const { appId, msgKey, message } = a.t.data;
  const history = readHistory(await deps.conversations.contextEntries(appId, a.t.touser), {
    entries: a.decision.action.history,
    chars: deps.config.context.historyChars,
    oldest: Date.now() - deps.config.context.maxAgeMs,
    jobId: msgKey,
  });
  return requestMessages(a.decision.action, a.budget, history, userContent(message) ?? '');
}

/**
 * Streams the model's answer into `a.stream` a message at a time (each checked, stored, then sent), within the
 * budget: once it is full the call is closed, so no more tokens are paid for. A model failure is returned, not
 * thrown.
 */
async function streamAnswer(a: Ask, messages: ChatMessage[], deps: AskDeps) {
  const splitter = new AnswerSplitter({ maxMessages: a.budget, firstEarly: deps.config.stream });
  const abort = new AbortController();
  let text = '';
  let result: ModelResult | undefined;
  let failure: ModelError | undefined;
  try {
    const request = {
      model: a.decision.action.model ?? a.settings.model ?? '',
      messages,
      maxTokens: a.decision.action.maxTokens,
      stream: deps.config.stream,
      signal: abort.signal,
    };
    result = await a.model.complete(request, async (delta) => {
      text += delta;
      for (const message of splitter.push(delta)) if (!(await a.stream.add(message))) abort.abort();
      if (splitter.full) abort.abort();
    });
    if (result.finish !== 'handover' && !a.stream.stopped) {
      for (const message of splitter.end()) if (!(await a.stream.add(message))) break;
    }
  } catch (error) {
    if (!(error instanceof ModelError)) throw error;
    failure = error;
  }
  return { result, failure, text, droppedBytes: splitter.droppedBytes };
}

/**
 * Asks the model for one message's answer: takes one of the account's slots (waiting for one: never failing for
 * it), shows typing while the model thinks, streams the answer out, then counts the tokens against the account's
 * day. The log line at info says how it ended, never what was said (that is at debug).
 */
export async function askModel(a: Ask, token: string | undefined, deps: AskDeps): Promise<Asked> {
  const { appId, msgKey } = a.t.data;
  const waited = Date.now();
  const slot = await deps.limits.acquire(appId, a.t.owner, a.settings.maxInFlight, SLOT_WAIT_MS);
  deps.metrics.slotWaitSeconds.observe({ app_id: appId }, (Date.now() - waited) / 1000);
  if (!slot) {
    await a.t.job.moveToDelayed(Date.now() + 1000, token);
    throw new DelayedError();
  }
  const stopTyping = deps.conversation.typing(
    appId,
    a.t.touser,
    actionTime(a.t.data.message.CreateTime) ?? a.t.data.receivedAt,
  );
  a.stream.onFirstSend = stopTyping;
  const started = performance.now();
  let messages: ChatMessage[] = [];
  let asked: Awaited<ReturnType<typeof streamAnswer>>;
  try {
    messages = await messagesFor(a, deps);
    asked = await streamAnswer(a, messages, deps);
  } finally {
    await slot.release();
    stopTyping();
    deps.metrics.modelSeconds.observe({ app_id: appId }, (performance.now() - started) / 1000);
  }
  const usage = tokensOf(asked.result, messages, asked.text);
  deps.metrics.tokens.inc({ app_id: appId, direction: 'in' }, usage.in);
  deps.metrics.tokens.inc({ app_id: appId, direction: 'out' }, usage.out);
  await deps.limits.spend(appId, usage.in + usage.out);
  const ms = Math.round(performance.now() - started);
  const finish = asked.result?.finish ?? asked.failure?.kind;
  const count = a.stream.replies.length;
  deps.logger.info(
    { appId, msgKey, finish, messages: count, tokensIn: usage.in, tokensOut: usage.out, ms },
    'model answered',
  );
  deps.logger.debug({ appId, msgKey, answer: asked.text }, 'model answer text');
  return { result: asked.result, failure: asked.failure, droppedBytes: asked.droppedBytes };
}
