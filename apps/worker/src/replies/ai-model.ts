import { type ChatMessage, HANDOFF_TOOL, HANDOFF_TOOL_NAME } from '@wx-kf/shared/ai';
import OpenAI from 'openai';

/** Why a model call failed, as metrics and the timeline name it. */
export type ModelFailureKind = 'timeout' | 'connection' | 'rate_limit' | 'server' | 'auth' | 'bad_request' | 'empty';

/** A model call that failed for good (after the client's retries with backoff). */
export class ModelError extends Error {
  override readonly name = 'ModelError';
  constructor(
    readonly kind: ModelFailureKind,
    message: string,
  ) {
    super(message);
  }
}

/** An OpenAI-compatible chat-completions endpoint and how to call it. */
export interface ModelEndpoint {
  baseUrl: string;
  apiKey?: string | undefined;
  /** Until the response starts, and between two streamed chunks. */
  timeoutMs: number;
  /** Retries of a timeout, a dropped connection, 429 or 5xx, with the client's backoff (honouring retry-after). */
  maxRetries: number;
}

export interface ModelRequest {
  model: string;
  messages: ChatMessage[];
  maxTokens: number;
  stream: boolean;
  /** Aborts the call (the answer has all the messages it may send): it ends as `aborted`, not as a failure. */
  signal?: AbortSignal | undefined;
}

/** How a call ended: the text went to `onText`; or the model asked for a person. Usage when the endpoint said it. */
export interface ModelResult {
  finish: 'stop' | 'length' | 'handover' | 'aborted';
  /** The `reason` the model gave `transfer_to_human`. */
  reason?: string | undefined;
  usage?: { in: number; out: number } | undefined;
}

/** The failure kind of an error the OpenAI client threw. */
function failureOf(error: unknown): ModelError {
  const message = error instanceof Error ? error.message.slice(0, 200) : String(error);
  if (error instanceof OpenAI.APIConnectionTimeoutError) return new ModelError('timeout', message);
  if (error instanceof OpenAI.APIConnectionError) return new ModelError('connection', message);
  if (error instanceof OpenAI.RateLimitError) return new ModelError('rate_limit', message);
  if (error instanceof OpenAI.InternalServerError) return new ModelError('server', message);
  if (error instanceof OpenAI.AuthenticationError || error instanceof OpenAI.PermissionDeniedError) {
    return new ModelError('auth', message);
  }
  return new ModelError('bad_request', message);
}

/** The `reason` argument of a tool call's JSON arguments (whatever the model wrote, it hands over). */
function reasonOf(args: string): string {
  try {
    const parsed: unknown = JSON.parse(args);
    const reason = typeof parsed === 'object' && parsed !== null && 'reason' in parsed ? parsed.reason : undefined;
    return typeof reason === 'string' ? reason : '';
  } catch {
    return '';
  }
}

/**
 * One OpenAI-compatible endpoint, called through the official `openai` client (6.x: Node 20): streaming, retries
 * with backoff that honour `retry-after`, timeouts. The `transfer_to_human` tool is offered in every request.
 * Nothing here logs: the caller decides what a log line may say (never the prompt or the answer above debug).
 */
export class ModelClient {
  private readonly client: OpenAI;

  constructor(private readonly endpoint: ModelEndpoint) {
    this.client = new OpenAI({
      baseURL: endpoint.baseUrl,
      // Without a key no Authorization header is sent (a local Ollama or vLLM); the client still wants a value.
      apiKey: endpoint.apiKey ?? 'unused',
      ...(endpoint.apiKey ? {} : { defaultHeaders: { Authorization: null } }),
      timeout: endpoint.timeoutMs,
      maxRetries: endpoint.maxRetries,
      // Passed explicitly, so that the client reads none of its OPENAI_* environment variables for them.
      organization: null,
      project: null,
      webhookSecret: null,
      logLevel: 'off',
    });
  }

  /** Asks the model; the answer's text goes to `onText` as it arrives (all at once when not streaming). */
  async complete(request: ModelRequest, onText: (delta: string) => Promise<void>): Promise<ModelResult> {
    try {
      return request.stream ? await this.streamed(request, onText) : await this.plain(request, onText);
    } catch (error) {
      if (request.signal?.aborted) return { finish: 'aborted' };
      // Ours (a ModelError, or what `onText` threw) as it is; the client's as a failure kind.
      if (!(error instanceof OpenAI.OpenAIError)) throw error;
      throw failureOf(error);
    }
  }

  private params(request: ModelRequest) {
    return {
      model: request.model,
      messages: request.messages,
      tools: [HANDOFF_TOOL],
      max_tokens: request.maxTokens,
    };
  }

  private async plain(request: ModelRequest, onText: (delta: string) => Promise<void>): Promise<ModelResult> {
    const answer = await this.client.chat.completions.create(this.params(request), { signal: request.signal });
    const choice = answer.choices[0];
    const usage = answer.usage ? { in: answer.usage.prompt_tokens, out: answer.usage.completion_tokens } : undefined;
    const call = choice?.message.tool_calls?.find(
      (c) => c.type === 'function' && c.function.name === HANDOFF_TOOL_NAME,
    );
    if (call?.type === 'function') return { finish: 'handover', reason: reasonOf(call.function.arguments), usage };
    const text = choice?.message.content ?? '';
    if (!text.trim()) throw new ModelError('empty', 'the model answered nothing');
    await onText(text);
    return { finish: choice?.finish_reason === 'length' ? 'length' : 'stop', usage };
  }

  private async streamed(request: ModelRequest, onText: (delta: string) => Promise<void>): Promise<ModelResult> {
    const idle = new AbortController();
    const signal = request.signal ? AbortSignal.any([request.signal, idle.signal]) : idle.signal;
    const stream = await this.client.chat.completions.create(
      { ...this.params(request), stream: true, stream_options: { include_usage: true } },
      { signal },
    );
    // The client's timeout covers the wait for the response; a stream that stalls after it is ours to end.
    let timer = setTimeout(() => idle.abort(), this.endpoint.timeoutMs);
    let tool: string | undefined;
    let args = '';
    let text = false;
    let finish: string | null = null;
    let usage: ModelResult['usage'];
    try {
      for await (const chunk of stream) {
        clearTimeout(timer);
        timer = setTimeout(() => idle.abort(), this.endpoint.timeoutMs);
        if (chunk.usage) usage = { in: chunk.usage.prompt_tokens, out: chunk.usage.completion_tokens };
        const choice = chunk.choices[0];
        for (const call of choice?.delta.tool_calls ?? []) {
          tool ??= call.function?.name ?? undefined;
          args += call.function?.arguments ?? '';
        }
        const delta = choice?.delta.content;
        if (delta) {
          text = true;
          await onText(delta);
        }
        finish = choice?.finish_reason ?? finish;
      }
    } catch (error) {
      if (idle.signal.aborted && !request.signal?.aborted) {
        throw new ModelError('timeout', `no answer for ${this.endpoint.timeoutMs} ms while streaming`);
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
    if (tool === HANDOFF_TOOL_NAME) return { finish: 'handover', reason: reasonOf(args), usage };
    if (!text) throw new ModelError('empty', 'the model answered nothing');
    return { finish: finish === 'length' ? 'length' : 'stop', usage };
  }
}
