import type { ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Fault, FaultPlan } from './faults.js';
import { isRecord, parseJsonBody } from './json-body.js';
import { type ChatMessage, type Generation, generate } from './model-answer.js';
import { MODEL_PATH, type ModelCall, type ModelState } from './model-state.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** OpenAI's error body. */
export const openAiError = (
  reply: FastifyReply,
  status: number,
  message: string,
  type: string,
  code: string | null = null,
) => reply.code(status).send({ error: { message, type, param: null, code } });

/** True when the call may proceed: no key is set, or the request carries it; else the 401 is sent. */
export function authorised(model: ModelState, req: FastifyRequest, reply: FastifyReply): boolean {
  const { key } = model.settings;
  if (!key || req.headers.authorization === `Bearer ${key}`) return true;
  void openAiError(reply, 401, 'Incorrect API key provided.', 'invalid_request_error', 'invalid_api_key');
  return false;
}

const isTextPart = (part: unknown) =>
  isRecord(part) &&
  (part.type === undefined || typeof part.type === 'string') &&
  (part.text === undefined || typeof part.text === 'string');

/** A message as OpenAI takes it: a role, and content that is text, text parts, null or absent. */
function isChatMessage(value: unknown): value is ChatMessage {
  if (!isRecord(value) || typeof value.role !== 'string') return false;
  const { content } = value;
  return (
    content === undefined ||
    content === null ||
    typeof content === 'string' ||
    (Array.isArray(content) && content.every(isTextPart))
  );
}

/** The names of the functions a request offers in `tools`. */
function toolNames(tools: unknown): string[] {
  if (!Array.isArray(tools)) return [];
  return tools.map((tool: unknown) => {
    const fn = isRecord(tool) ? tool.function : undefined;
    return String((isRecord(fn) ? fn.name : undefined) ?? '');
  });
}

/** The call a request body makes, as it is recorded (messages only when every one is well-formed). */
function callOf(body: Record<string, unknown>, at: number): ModelCall {
  const messages: unknown[] = Array.isArray(body.messages) ? body.messages : [];
  const limit = Number(body.max_completion_tokens ?? body.max_tokens);
  return {
    at,
    model: typeof body.model === 'string' ? body.model : '',
    stream: body.stream === true,
    messages: messages.every(isChatMessage) ? messages : [],
    tools: toolNames(body.tools),
    maxTokens: Number.isInteger(limit) && limit > 0 ? limit : undefined,
    outcome: 'pending',
  };
}

/** The answer's tool call with these arguments (a whole answer's, or a stream's first delta with none). */
type ToolCall = (args: string) => object;

/** One chat completion in flight: from its record until the response ends or the client goes away. */
class Completion {
  readonly call: ModelCall;
  private readonly res: ServerResponse;
  private closed = false;
  private readonly gone: Promise<void>;

  constructor(
    private readonly reply: FastifyReply,
    private readonly model: ModelState,
    private readonly body: Record<string, unknown>,
    private readonly now: () => number,
  ) {
    this.call = callOf(body, now());
    model.calls.push(this.call);
    this.res = reply.raw;
    model.open.add(this.res);
    model.maxInFlight = Math.max(model.maxInFlight, model.open.size);
    this.gone = new Promise<void>((resolve) =>
      this.res.once('close', () => {
        this.closed = true;
        model.open.delete(this.res);
        if (this.call.outcome === 'pending') this.call.outcome = 'aborted';
        resolve();
      }),
    );
  }

  /** Waits `ms` unless the client goes away first. */
  pause(ms: number): Promise<unknown> | undefined {
    return ms > 0 ? Promise.race([sleep(ms), this.gone]) : undefined;
  }

  error(status: number, message: string, type: string, code: string | null = null): FastifyReply {
    this.call.outcome = status;
    return openAiError(this.reply, status, message, type, code);
  }

  /** Plays a fault: the reply when it answered the call, undefined when the call goes on (after a delay). */
  async playFault(fault: Exclude<Fault, 'ok'>, socket: { destroy(): void }): Promise<FastifyReply | undefined> {
    if ('hang' in fault) {
      this.call.outcome = 'hang';
      this.reply.hijack();
      await this.gone;
      return this.reply;
    }
    if ('drop' in fault) {
      this.call.outcome = 'drop';
      socket.destroy();
      this.reply.hijack();
      return this.reply;
    }
    if ('delayMs' in fault) {
      await this.pause(fault.delayMs);
      return undefined;
    }
    if ('http' in fault && fault.http === 429) {
      const ms = fault.retryAfterMs ?? 1000;
      this.reply.header('retry-after', String(Math.ceil(ms / 1000))).header('retry-after-ms', String(ms));
      return this.error(429, 'Rate limit reached (simulated).', 'requests', 'rate_limit_exceeded');
    }
    const status = 'http' in fault ? fault.http : 500;
    return this.error(status, 'The server had an error while processing your request (simulated).', 'server_error');
  }

  /** Generates the answer and sends it, in one body or as a stream, at the model's speed. */
  async answer(): Promise<unknown> {
    const { latencyMs, tokensPerSecond } = this.model.settings;
    const generation = generate(this.call.messages, this.call.tools, this.body.tool_choice, this.call.maxTokens);
    const n = this.model.calls.length;
    const head = { id: `chatcmpl-sim-${n}`, created: Math.floor(this.now() / 1000), model: this.call.model };
    const toolCall = (args: string) => ({
      id: `call_sim_${n}`,
      type: 'function',
      function: { name: generation.tool, arguments: args },
    });
    await this.pause(latencyMs);
    if (!this.call.stream) {
      await this.pause(tokensPerSecond > 0 ? (generation.pieces.length * 1000) / tokensPerSecond : 0);
      if (this.closed) return this.reply;
      this.call.outcome = outcomeOf(generation);
      return plainAnswer(head, generation, toolCall);
    }
    if (this.closed) return this.reply;
    await this.stream(head, generation, toolCall, tokensPerSecond);
    return this.reply;
  }

  /** Server-sent events as OpenAI sends them: a role delta, one delta per token, the finish, then the usage. */
  private async stream(head: object, generation: Generation, toolCall: ToolCall, tokensPerSecond: number) {
    const { pieces, tool, finish, usage } = generation;
    const options = this.body.stream_options;
    const withUsage = isRecord(options) && options.include_usage === true;
    const event = (choices: object[], usageNow: object | null = null) => {
      const data = { ...head, object: 'chat.completion.chunk', choices, ...(withUsage ? { usage: usageNow } : {}) };
      return `data: ${JSON.stringify(data)}\n\n`;
    };
    const chunk = (delta: object, finishReason: string | null = null) =>
      event([{ index: 0, delta, logprobs: null, finish_reason: finishReason }]);
    this.reply.hijack();
    const res = this.res;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
    const toolDelta = tool ? { tool_calls: [{ index: 0, ...toolCall('') }] } : {};
    res.write(chunk({ role: 'assistant', content: tool ? null : '', ...toolDelta }));
    const started = performance.now();
    for (const [i, piece] of pieces.entries()) {
      if (tokensPerSecond > 0) await this.pause(started + (i * 1000) / tokensPerSecond - performance.now());
      if (this.closed) return;
      res.write(chunk(tool ? { tool_calls: [{ index: 0, function: { arguments: piece } }] } : { content: piece }));
    }
    this.call.outcome = outcomeOf(generation);
    res.write(chunk({}, finish));
    if (withUsage) res.write(event([], usage));
    res.end('data: [DONE]\n\n');
  }
}

const outcomeOf = ({ tool, finish }: Generation) => (tool ? 'tool_call' : finish === 'length' ? 'length' : 'answer');

/** The answer in one body (`stream` false). */
function plainAnswer(head: object, { pieces, tool, finish, usage }: Generation, toolCall: ToolCall) {
  const content = pieces.join('');
  const message = tool
    ? { role: 'assistant', content: null, refusal: null, tool_calls: [toolCall(content)] }
    : { role: 'assistant', content, refusal: null };
  const choice = { index: 0, message, logprobs: null, finish_reason: finish };
  return { ...head, object: 'chat.completion', choices: [choice], usage };
}

/**
 * `POST /v1/chat/completions`: records the call (in flight until its response ends), checks the key and the
 * request, plays a fault from the plan (path MODEL_PATH), then answers.
 */
export async function chatCompletion(
  req: FastifyRequest,
  reply: FastifyReply,
  model: ModelState,
  faults: FaultPlan,
  now: () => number,
): Promise<unknown> {
  const body = parseJsonBody(req.body) ?? {};
  const completion = new Completion(reply, model, body, now);
  const { call } = completion;
  if (!authorised(model, req, reply)) {
    call.outcome = 401;
    return reply;
  }
  if (!call.model || call.messages.length === 0) {
    return completion.error(400, 'model and messages (each with a role) are required', 'invalid_request_error');
  }
  const fault = faults.next(MODEL_PATH, undefined);
  if (fault && fault !== 'ok') {
    const answered = await completion.playFault(fault, req.raw.socket);
    if (answered) return answered;
  }
  return completion.answer();
}
