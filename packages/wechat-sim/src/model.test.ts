import OpenAI from 'openai';
import type { ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MODEL_PATH } from './model.js';
import { contextLine, longText } from './model-answer.js';
import { Simulator } from './server.js';

const sim = new Simulator({ accounts: [{ appId: 'wxmp', appSecret: 's', type: 'miniprogram' }] });
let base = '';
let client: OpenAI;
const MODEL = 'wx-kf-fake';

const HANDOFF: ChatCompletionTool = {
  type: 'function',
  function: {
    name: 'transfer_to_human',
    description: 'Hand the user to a person',
    parameters: { type: 'object', properties: { reason: { type: 'string' } }, required: ['reason'] },
  },
};
const user = (content: string): ChatCompletionMessageParam => ({ role: 'user', content });
const ask = (content: string, extra: Partial<OpenAI.ChatCompletionCreateParamsNonStreaming> = {}) =>
  client.chat.completions.create({ model: MODEL, messages: [user(content)], ...extra });

/** Streams an answer with the official client and puts it back together. */
async function streamed(messages: ChatCompletionMessageParam[], extra: { tools?: ChatCompletionTool[] } = {}) {
  const stream = await client.chat.completions.create({
    model: MODEL,
    messages,
    stream: true,
    stream_options: { include_usage: true },
    ...extra,
  });
  let content = '';
  let args = '';
  let name: string | undefined;
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | null | undefined;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    const choice = chunk.choices[0];
    content += choice?.delta.content ?? '';
    for (const call of choice?.delta.tool_calls ?? []) {
      name ??= call.function?.name;
      args += call.function?.arguments ?? '';
    }
    finish = choice?.finish_reason ?? finish;
    usage = chunk.usage ?? usage;
  }
  return { content, name, args, finish, usage, chunks };
}

/** The raw server-sent events of a streaming call, by plain fetch. */
async function sse(body: object): Promise<{ type: string | null; events: string[] }> {
  const res = await fetch(`${base}${MODEL_PATH}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, stream: true, ...body }),
  });
  const text = await res.text();
  expect(text.endsWith('\n\n')).toBe(true);
  return { type: res.headers.get('content-type'), events: text.slice(0, -2).split('\n\n') };
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(check()).toBe(true);
};

beforeAll(async () => {
  base = await sim.listen();
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'sk-test', maxRetries: 0, timeout: 5000 });
});
afterEach(() => sim.reset());
afterAll(() => sim.close());

describe('fake model: answers', () => {
  it('answers a plain call with the context line, usage and finish_reason stop', async () => {
    const answer = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'system', content: 'You are helpful.' }, user('你好 hello')],
    });
    expect(answer.object).toBe('chat.completion');
    expect(answer.model).toBe(MODEL);
    expect(answer.choices[0]?.finish_reason).toBe('stop');
    const content = answer.choices[0]?.message.content ?? '';
    expect(content.split('\n')[0]).toBe('[fake model] messages=2 system=1 user=1 assistant=0 tool=0 last="你好 hello"');
    // Tokens: one per CJK character, one per run of up to 4 other characters; 4 more per message:
    // "You |are |help|ful." and "你|好| hel|lo".
    expect(answer.usage).toMatchObject({ prompt_tokens: 4 + 4 + (4 + 4), completion_tokens: expect.any(Number) });
    expect(answer.usage?.total_tokens).toBe(
      (answer.usage?.prompt_tokens ?? 0) + (answer.usage?.completion_tokens ?? 0),
    );
    expect((await client.models.list()).data.map((m) => m.id)).toEqual([MODEL]);
  });

  it('shows the previous turns it was sent, and records them', async () => {
    const messages: ChatCompletionMessageParam[] = [
      { role: 'system', content: 'Answer in one line.' },
      user('first question'),
      { role: 'assistant', content: 'first answer' },
      user('second question'),
      { role: 'assistant', content: 'second answer' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'third ' },
          { type: 'text', text: 'question' },
        ],
      },
    ];
    const answer = await client.chat.completions.create({ model: MODEL, messages });
    expect(answer.choices[0]?.message.content?.split('\n')[0]).toBe(
      '[fake model] messages=6 system=1 user=3 assistant=2 tool=0 last="third question"',
    );
    const state = (await (await fetch(`${base}/__sim/model`)).json()) as { calls: { messages: unknown[] }[] };
    expect(state.calls).toHaveLength(1);
    expect(state.calls[0]?.messages).toEqual(messages);
    expect(sim.model.calls[0]).toMatchObject({ model: MODEL, stream: false, outcome: 'answer', tools: [] });
  });

  it('streams the same answer and usage as the plain call', async () => {
    const messages = [user('一样吗? same?')];
    const plain = await client.chat.completions.create({ model: MODEL, messages });
    const stream = await streamed(messages);
    expect(stream.content).toBe(plain.choices[0]?.message.content);
    expect(stream.finish).toBe('stop');
    expect(stream.usage).toEqual(plain.usage);
    // One chunk per token, plus the role, the finish and the usage chunks.
    expect(stream.chunks).toBe((plain.usage?.completion_tokens ?? 0) + 3);
  });

  it('sends OpenAI-shaped server-sent events, with usage only when asked', async () => {
    const { type, events } = await sse({ messages: [user('hi')], stream_options: { include_usage: true } });
    expect(type).toMatch(/^text\/event-stream/);
    expect(events.every((e) => e.startsWith('data: '))).toBe(true);
    expect(events.at(-1)).toBe('data: [DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)));
    expect(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0].id)).toBe(true);
    expect(chunks[0].choices[0].delta).toEqual({ role: 'assistant', content: '' });
    expect(chunks.at(-2).choices[0]).toMatchObject({ delta: {}, finish_reason: 'stop' });
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { prompt_tokens: 5 } });
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);

    const bare = (await sse({ messages: [user('hi')] })).events.slice(0, -1).map((e) => JSON.parse(e.slice(6)));
    expect(bare.some((c) => 'usage' in c)).toBe(false);
    expect(bare.at(-1).choices[0].finish_reason).toBe('stop');
  });

  it('writes a long answer of exactly N bytes in paragraphs of Chinese and English sentences', async () => {
    const answer = await ask('please #long 9000');
    const content = answer.choices[0]?.message.content ?? '';
    expect(Buffer.byteLength(content)).toBe(9000);
    const [line, ...paragraphs] = content.split('\n\n');
    expect(line).toBe('[fake model] messages=1 system=0 user=1 assistant=0 tool=0 last="please #long 9000"');
    expect(paragraphs.length).toBeGreaterThan(4);
    expect(paragraphs.some((p) => Buffer.byteLength(p) > 2048)).toBe(true);
    expect(paragraphs[0]).toMatch(/^Sentence 1 of .*\. 第2句：.*。Sentence 3 of .*\.$/);
    const numbers = [...content.matchAll(/Sentence (\d+) |第(\d+)句/g)].map((m) => Number(m[1] ?? m[2]));
    expect(numbers).toEqual(numbers.map((_, i) => i + 1));
    // Streaming gives the same bytes.
    expect((await streamed([user('please #long 9000')])).content).toBe(content);
  });

  it('cuts a long answer to any byte count (in ASCII), never below the context line', () => {
    const line = contextLine([user('#long')]);
    for (let bytes = 0; bytes < 3000; bytes++) {
      const text = longText(line, bytes);
      expect(Buffer.byteLength(text)).toBe(Math.max(bytes, Buffer.byteLength(line)));
      expect(text.startsWith(line)).toBe(true);
    }
  });

  it('stops at max_tokens with finish_reason length', async () => {
    const answer = await ask('#long 5000', { max_tokens: 50 });
    expect(answer.choices[0]?.finish_reason).toBe('length');
    expect(answer.usage?.completion_tokens).toBe(50);
    expect(sim.model.calls[0]).toMatchObject({ maxTokens: 50, outcome: 'length' });
  });
});

describe('fake model: the transfer_to_human tool', () => {
  it('calls the tool when the user asks for a person and the tool is offered', async () => {
    const answer = await ask('我要转人工', { tools: [HANDOFF] });
    const choice = answer.choices[0];
    expect(choice?.finish_reason).toBe('tool_calls');
    expect(choice?.message.content).toBeNull();
    const call = choice?.message.tool_calls?.[0];
    expect(call?.type === 'function' && call.function.name).toBe('transfer_to_human');
    expect(call?.type === 'function' && JSON.parse(call.function.arguments)).toEqual({
      reason: 'the user asked for a person: 我要转人工',
    });
    expect(sim.model.calls[0]).toMatchObject({ tools: ['transfer_to_human'], outcome: 'tool_call' });

    // Not offered (or tool_choice "none"): a plain answer.
    expect((await ask('我要转人工')).choices[0]?.finish_reason).toBe('stop');
    expect((await ask('#human', { tools: [HANDOFF], tool_choice: 'none' })).choices[0]?.finish_reason).toBe('stop');
  });

  it('streams the tool call as tool_calls deltas', async () => {
    const stream = await streamed([user('can I talk to a human?')], { tools: [HANDOFF] });
    expect(stream).toMatchObject({ content: '', name: 'transfer_to_human', finish: 'tool_calls' });
    expect(JSON.parse(stream.args)).toEqual({ reason: 'the user asked for a person: can I talk to a human?' });
    expect(stream.chunks).toBeGreaterThan(4);
  });
});

describe('fake model: faults, speed, limits and keys', () => {
  it('answers 429 with retry-after, which the client waits for and retries', async () => {
    sim.fail({ path: MODEL_PATH, script: [{ http: 429, retryAfterMs: 50 }] });
    const raw = await fetch(`${base}${MODEL_PATH}`, {
      method: 'POST',
      body: JSON.stringify({ model: MODEL, messages: [user('x')] }),
      headers: { 'content-type': 'application/json' },
    });
    expect(raw.status).toBe(429);
    expect([raw.headers.get('retry-after'), raw.headers.get('retry-after-ms')]).toEqual(['1', '50']);
    expect(((await raw.json()) as { error: { code: string } }).error.code).toBe('rate_limit_exceeded');

    sim.fail({
      path: MODEL_PATH,
      script: [
        { http: 429, retryAfterMs: 50 },
        { http: 429, retryAfterMs: 50 },
      ],
    });
    const retrying = client.withOptions({ maxRetries: 2 });
    const answer = await retrying.chat.completions.create({ model: MODEL, messages: [user('again')] });
    expect(answer.choices[0]?.finish_reason).toBe('stop');
    expect(sim.model.calls.map((c) => c.outcome)).toEqual([429, 429, 429, 'answer']);
  });

  it('answers 500 in OpenAI error shape', async () => {
    sim.fail({ path: MODEL_PATH, script: [{ http: 500 }] });
    const error = await ask('x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect((error as InstanceType<typeof OpenAI.APIError>).error).toMatchObject({ type: 'server_error' });
    expect((await ask('x')).choices[0]?.finish_reason).toBe('stop');
  });

  it('hangs until the client times out, then no longer counts the call in flight', async () => {
    sim.fail({ path: MODEL_PATH, script: [{ hang: true }] });
    const error = await client.chat.completions
      .create({ model: MODEL, messages: [user('x')] }, { timeout: 200 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    await until(() => sim.model.inFlight === 0);
    expect(sim.model.calls.map((c) => c.outcome)).toEqual(['hang']);
  });

  it('closes at once with a call hung', async () => {
    const own = new Simulator({ accounts: [] });
    const url = await own.listen();
    own.fail({ path: MODEL_PATH, script: [{ hang: true }] });
    const hung = fetch(`${url}${MODEL_PATH}`, {
      method: 'POST',
      body: JSON.stringify({ model: MODEL, messages: [user('x')] }),
    }).catch((e: unknown) => e);
    await until(() => own.model.inFlight === 1);
    await own.close();
    expect(await hung).toBeInstanceOf(Error);
  });

  it('waits for its latency, paces tokens, and records the most calls in flight at once', async () => {
    const set = await fetch(`${base}/__sim/model`, {
      method: 'POST',
      body: JSON.stringify({ latencyMs: 150, tokensPerSecond: 200 }),
      headers: { 'content-type': 'application/json' },
    });
    expect(set.status).toBe(200);
    const started = performance.now();
    const answers = await Promise.all([ask('a'), ask('b'), ask('c')]);
    const tokens = answers[0]?.usage?.completion_tokens ?? 0;
    expect(performance.now() - started).toBeGreaterThanOrEqual(150 + (tokens * 1000) / 200 - 5);
    expect(sim.model.maxInFlight).toBe(3);
    expect(sim.model.inFlight).toBe(0);
    const state = (await (await fetch(`${base}/__sim/model`)).json()) as Record<string, unknown>;
    expect(state).toMatchObject({ inFlight: 0, maxInFlight: 3, settings: { latencyMs: 150, tokensPerSecond: 200 } });

    // The first token comes after the latency, the last one after the tokens' time.
    const first = performance.now();
    const stream = await client.chat.completions.create({ model: MODEL, messages: [user('a')], stream: true });
    let firstToken = 0;
    for await (const chunk of stream)
      if (!firstToken && chunk.choices[0]?.delta.content) firstToken = performance.now();
    expect(firstToken - first).toBeGreaterThanOrEqual(145);
    expect(performance.now() - first).toBeGreaterThanOrEqual(150 + ((tokens - 1) * 1000) / 200 - 5);

    sim.reset();
    expect(sim.model.settings).toMatchObject({ latencyMs: 0, tokensPerSecond: 0 });
  });

  it('answers 401 without the right key, when it has one', async () => {
    const set = await fetch(`${base}/__sim/model`, { method: 'POST', body: JSON.stringify({ key: 'sk-right' }) });
    expect(set.status).toBe(200);
    const error = await ask('x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((error as InstanceType<typeof OpenAI.APIError>).error).toMatchObject({ code: 'invalid_api_key' });
    await expect(client.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const keyed = client.withOptions({ apiKey: 'sk-right' });
    expect((await keyed.chat.completions.create({ model: MODEL, messages: [user('x')] })).object).toBe(
      'chat.completion',
    );
    expect(sim.model.calls.map((c) => c.outcome)).toEqual([401, 'answer']);
  });

  it('refuses a request with no messages (400) and bad settings', async () => {
    const error = await client.chat.completions.create({ model: MODEL, messages: [] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    const bad = await fetch(`${base}/__sim/model`, { method: 'POST', body: JSON.stringify({ latencyMs: -1 }) });
    expect(bad.status).toBe(400);
  });
});
