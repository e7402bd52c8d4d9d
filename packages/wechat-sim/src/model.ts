import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { FaultPlan } from './faults.js';
import { parseJsonBody } from './json-body.js';
import { type ChatMessage, generate } from './model-answer.js';

export interface ModelOptions {
  /** The name `/v1/models` lists (any model a request names is accepted and echoed back). */
  name?: string;
  /** When set, calls need `Authorization: Bearer <key>` (else 401, in OpenAI's error shape). */
  key?: string;
  /** Time to the first token, in ms (a plain answer takes it too). */
  latencyMs?: number;
  /** Generation speed; 0 = every token at once. A plain answer waits as long as the stream would take. */
  tokensPerSecond?: number;
}

export type ModelSettings = Required<Omit<ModelOptions, 'key'>> & { key: string | undefined };

/** One request to `/v1/chat/completions`, as tests read it. */
export interface ModelCall {
  at: number;
  model: string;
  stream: boolean;
  messages: ChatMessage[];
  /** Names of the functions offered in `tools`. */
  tools: string[];
  maxTokens: number | undefined;
  /** How it ended: an answer, a tool call, an answer cut at max_tokens, an HTTP error status, or a fault. */
  outcome: 'pending' | 'answer' | 'tool_call' | 'length' | number | 'hang' | 'drop' | 'aborted';
}

export const MODEL_PATH = '/v1/chat/completions';
const DEFAULTS: ModelSettings = { name: 'wx-kf-fake', key: undefined, latencyMs: 0, tokensPerSecond: 0 };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** The defaults with the options given (an option given as undefined keeps its default). */
const settingsOf = (options: ModelOptions): ModelSettings => ({
  ...DEFAULTS,
  ...Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)),
});

/** The fake model's settings (changeable at run time) and the record of its calls. */
export class ModelState {
  settings: ModelSettings;
  readonly calls: ModelCall[] = [];
  /** Responses not finished yet: their number is the calls in flight. */
  readonly open = new Set<ServerResponse>();
  maxInFlight = 0;

  constructor(private readonly options: ModelOptions = {}) {
    this.settings = settingsOf(options);
  }

  get inFlight(): number {
    return this.open.size;
  }

  /** Forgets the calls and restores the settings the simulator was started with. */
  reset(): void {
    this.calls.length = 0;
    this.maxInFlight = this.open.size;
    this.settings = settingsOf(this.options);
  }
}

/** OpenAI's error body. */
const fail = (reply: FastifyReply, status: number, message: string, type: string, code: string | null = null) =>
  reply.code(status).send({ error: { message, type, param: null, code } });

/**
 * An OpenAI-compatible model on the simulator's port: `POST /v1/chat/completions` (plain and streaming) and
 * `GET /v1/models`, with deterministic answers (model-answer.ts), faults from the simulator's fault plan (path
 * `/v1/chat/completions`), and `/__sim/model` to read its calls and change its speed.
 */
export function modelRoutes(app: FastifyInstance, model: ModelState, faults: FaultPlan, now: () => number): void {
  // A hung or slow call must not keep the simulator from closing.
  app.addHook('preClose', async () => {
    for (const res of model.open) res.destroy();
  });

  const authorised = (req: FastifyRequest, reply: FastifyReply): boolean => {
    const { key } = model.settings;
    if (!key || req.headers.authorization === `Bearer ${key}`) return true;
    void fail(reply, 401, 'Incorrect API key provided.', 'invalid_request_error', 'invalid_api_key');
    return false;
  };

  app.get('/v1/models', async (req, reply) => {
    if (!authorised(req, reply)) return reply;
    return { object: 'list', data: [{ id: model.settings.name, object: 'model', created: 0, owned_by: 'wx-kf' }] };
  });

  app.post(MODEL_PATH, async (req, reply) => {
    const body = parseJsonBody(req.body) ?? {};
    const messages = Array.isArray(body.messages) ? (body.messages as ChatMessage[]) : [];
    const tools = Array.isArray(body.tools)
      ? body.tools.map((t: { function?: { name?: unknown } }) => String(t?.function?.name ?? ''))
      : [];
    const limit = Number(body.max_completion_tokens ?? body.max_tokens);
    const call: ModelCall = {
      at: now(),
      model: typeof body.model === 'string' ? body.model : '',
      stream: body.stream === true,
      messages,
      tools,
      maxTokens: Number.isInteger(limit) && limit > 0 ? limit : undefined,
      outcome: 'pending',
    };
    model.calls.push(call);

    // In flight from now until the response ends or the client goes away.
    const res = reply.raw;
    let closed = false;
    model.open.add(res);
    model.maxInFlight = Math.max(model.maxInFlight, model.open.size);
    const gone = new Promise<void>((resolve) =>
      res.once('close', () => {
        closed = true;
        model.open.delete(res);
        if (call.outcome === 'pending') call.outcome = 'aborted';
        resolve();
      }),
    );
    const pause = (ms: number) => (ms > 0 ? Promise.race([sleep(ms), gone]) : undefined);
    const error = (status: number, message: string, type: string, code: string | null = null) => {
      call.outcome = status;
      return fail(reply, status, message, type, code);
    };

    if (!authorised(req, reply)) {
      call.outcome = 401;
      return reply;
    }
    if (!call.model || messages.length === 0 || !messages.every((m) => typeof m?.role === 'string')) {
      return error(400, 'model and messages (each with a role) are required', 'invalid_request_error');
    }

    const fault = faults.next(MODEL_PATH, undefined);
    if (fault && fault !== 'ok') {
      if ('hang' in fault) {
        call.outcome = 'hang';
        reply.hijack();
        await gone;
        return reply;
      }
      if ('drop' in fault) {
        call.outcome = 'drop';
        req.raw.socket.destroy();
        reply.hijack();
        return reply;
      }
      if ('delayMs' in fault) await pause(fault.delayMs);
      else if ('http' in fault && fault.http === 429) {
        const ms = fault.retryAfterMs ?? 1000;
        reply.header('retry-after', String(Math.ceil(ms / 1000))).header('retry-after-ms', String(ms));
        return error(429, 'Rate limit reached (simulated).', 'requests', 'rate_limit_exceeded');
      } else {
        const status = 'http' in fault ? fault.http : 500;
        return error(status, 'The server had an error while processing your request (simulated).', 'server_error');
      }
    }

    const { latencyMs, tokensPerSecond } = model.settings;
    const { pieces, tool, finish, usage } = generate(messages, tools, body.tool_choice, call.maxTokens);
    const outcome = tool ? 'tool_call' : finish === 'length' ? 'length' : 'answer';
    const n = model.calls.length;
    const head = { id: `chatcmpl-sim-${n}`, created: Math.floor(now() / 1000), model: call.model };
    const toolCall = (args: string) => ({
      id: `call_sim_${n}`,
      type: 'function',
      function: { name: tool, arguments: args },
    });

    await pause(latencyMs);
    if (!call.stream) {
      await pause(tokensPerSecond > 0 ? (pieces.length * 1000) / tokensPerSecond : 0);
      if (closed) return reply;
      call.outcome = outcome;
      const content = pieces.join('');
      const message = tool
        ? { role: 'assistant', content: null, refusal: null, tool_calls: [toolCall(content)] }
        : { role: 'assistant', content, refusal: null };
      const choice = { index: 0, message, logprobs: null, finish_reason: finish };
      return { ...head, object: 'chat.completion', choices: [choice], usage };
    }

    // Server-sent events as OpenAI sends them: a role delta, one delta per token, the finish, then the usage.
    if (closed) return reply;
    const withUsage = (body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
    const event = (choices: object[], usageNow: object | null = null) => {
      const data = { ...head, object: 'chat.completion.chunk', choices, ...(withUsage ? { usage: usageNow } : {}) };
      return `data: ${JSON.stringify(data)}\n\n`;
    };
    const chunk = (delta: object, finishReason: string | null = null) =>
      event([{ index: 0, delta, logprobs: null, finish_reason: finishReason }]);
    reply.hijack();
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
    res.write(
      chunk({
        role: 'assistant',
        content: tool ? null : '',
        ...(tool ? { tool_calls: [{ index: 0, ...toolCall('') }] } : {}),
      }),
    );
    const started = performance.now();
    for (const [i, piece] of pieces.entries()) {
      if (tokensPerSecond > 0) await pause(started + (i * 1000) / tokensPerSecond - performance.now());
      if (closed) return reply;
      res.write(chunk(tool ? { tool_calls: [{ index: 0, function: { arguments: piece } }] } : { content: piece }));
    }
    call.outcome = outcome;
    res.write(chunk({}, finish));
    if (withUsage) res.write(event([], usage));
    res.end('data: [DONE]\n\n');
    return reply;
  });

  // Inspection and control (not OpenAI's API).
  app.get('/__sim/model', async () => ({
    settings: { ...model.settings, key: model.settings.key ? '(set)' : undefined },
    calls: model.calls,
    inFlight: model.inFlight,
    maxInFlight: model.maxInFlight,
  }));
  app.post('/__sim/model', async (req, reply) => {
    const body = parseJsonBody(req.body);
    const number = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;
    if (!body || ['latencyMs', 'tokensPerSecond'].some((k) => k in body && !number(body[k]))) {
      return reply.code(400).send({ error: 'latencyMs and tokensPerSecond are numbers ≥ 0' });
    }
    if (body.key !== undefined && body.key !== null && typeof body.key !== 'string') {
      return reply.code(400).send({ error: 'key is a string, or null for none' });
    }
    const { latencyMs, tokensPerSecond, key } = body as Partial<ModelSettings>;
    model.settings = {
      ...model.settings,
      ...(latencyMs !== undefined ? { latencyMs } : {}),
      ...(tokensPerSecond !== undefined ? { tokensPerSecond } : {}),
      ...(key !== undefined ? { key: key ?? undefined } : {}),
    };
    return { errcode: 0, errmsg: 'ok' };
  });
}
