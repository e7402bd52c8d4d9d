// AI replies (issue 22) through the product: the ingress in this process, workers as their own OS processes, real
// Redis, the simulator's WeChat API (enforcing the send windows) and its fake model.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '@wx-kf/ingress';
import { loadConfig } from '@wx-kf/shared/config';
import { Conversations, forgetUser, WINDOW_GRANTS } from '@wx-kf/shared/conversation';
import { createLogger } from '@wx-kf/shared/log';
import { INBOUND_QUEUE, type InboundJobData, inboundJob, inboundJobId, openQueue } from '@wx-kf/shared/queue';
import { createRedis, keyspaceOf } from '@wx-kf/shared/redis';
import type { FieldMap, InboundMessage } from '@wx-kf/shared/wechat';
import { isolatedRedisUrl, ServiceProcess } from '@wx-kf/testkit';
import { buildPush, MODEL_PATH, Simulator, sampleMessage } from '@wx-kf/wechat-sim';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

const APP = 'wxaitest00000001'; // one worker: rules with ai
const LIMITED = 'wxaitest00000002'; // two workers, at most 2 model calls in flight
const TOKEN = 'aiTestToken';
const MODEL_KEY = 'sk-wx-kf-test-key-0123456789';
const SORRY = 'sorry, the assistant cannot answer right now';
const PERSON = 'a person will answer you soon';
const dir = mkdtempSync(join(tmpdir(), 'wx-kf-ai-'));
const file = (name: string, text: string) => {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
};
const rules = file(
  'rules.yaml',
  `rules:
  - when: { msgType: text, equals: hello }
    reply: [{ msgtype: text, text: { content: hi } }]
  - when: { msgType: text, contains: "#long" }
    ai: { reserve: 1, maxTokens: 4000 }
  - when: { msgType: text, contains: "#risky" }
    ai: { check: true, onError: [{ msgtype: text, text: { content: "${SORRY}" } }] }
  - when: { msgType: event }
    reply: []
fallback:
  ai:
    system: You answer questions about the wx-kf test shop.
    onError: [{ msgtype: text, text: { content: "${SORRY}" } }]
    handover: [{ msgtype: text, text: { content: "${PERSON}" } }]
`,
);
const accounts = file(
  'accounts.yaml',
  `accounts:
  - { appId: ${APP}, appSecret: ai-secret, token: ${TOKEN}, replyRules: ${rules} }
  - { appId: ${LIMITED}, appSecret: ai-secret, token: ${TOKEN}, replyRules: ${rules}, ai: { maxInFlight: 2 } }
`,
);
const sim = new Simulator({
  accounts: [
    { appId: APP, appSecret: 'ai-secret', type: 'miniprogram' },
    { appId: LIMITED, appSecret: 'ai-secret', type: 'miniprogram' },
  ],
  sendWindows: true,
  model: { key: MODEL_KEY },
});
let redisUrl: string;
let redis: Redis;
let producer: Redis;
let ingress: ReturnType<typeof buildApp>;
let inbound: Queue<InboundJobData>;
let conversations: Conversations;
const workers: ServiceProcess[] = [];
let n = 0;
const user = (tag = 'u') => `o_ai_${tag}_${++n}_${Date.now().toString(36)}`;

const env = () => ({
  REDIS_URL: redisUrl,
  WECHAT_API_BASE: sim.url,
  WECHAT_ACCOUNTS_FILE: accounts,
  AI_BASE_URL: `${sim.url}/v1`,
  AI_MODEL: 'wx-kf-fake',
  AI_API_KEY: MODEL_KEY,
  AI_MAX_RETRIES: '1',
  AI_TIMEOUT_MS: '3000',
  TYPING_AFTER_MS: '100',
  WORKER_LOCK_DURATION_MS: '5000',
});
async function startWorker(): Promise<ServiceProcess> {
  const w = ServiceProcess.start('worker', env());
  workers.push(w);
  await w.waitFor('worker started');
  return w;
}

beforeAll(async () => {
  await sim.listen();
  redisUrl = await isolatedRedisUrl();
  redis = createRedis(redisUrl, 'client');
  producer = createRedis(redisUrl, 'producer');
  inbound = openQueue(INBOUND_QUEUE, redis);
  const config = loadConfig(env());
  conversations = new Conversations(redis);
  ingress = buildApp({
    config,
    queue: openQueue(INBOUND_QUEUE, producer),
    redis: producer,
    logger: createLogger('ai-test', { level: 'silent' }),
  });
  await startWorker();
}, 60_000);
beforeEach(() => sim.reset());
afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop('SIGTERM')));
  await ingress.close();
  await inbound.close();
  redis.disconnect();
  producer.disconnect();
  await sim.close();
});

/** Pushes a user's text through the ingress, as WeChat would (it opens the user's window); the answer body. */
async function push(message: FieldMap, appId = APP): Promise<string> {
  sim.state.observe(appId, message);
  const p = buildPush({ account: { appId, token: TOKEN }, message, mode: 'plain', format: 'json' });
  const res = await ingress.inject({
    method: 'POST',
    url: `/wechat/${appId}?${new URLSearchParams(p.query)}`,
    payload: p.body,
    headers: { 'content-type': p.contentType },
  });
  expect(res.statusCode).toBe(200);
  return res.body;
}
const text = (openid: string, content: string, createTime = Math.floor(Date.now() / 1000)) =>
  sampleMessage('text', { fromUser: openid, content, createTime });
const say = (openid: string, content: string, appId = APP) => push(text(openid, content), appId);
const received = (openid: string, appId = APP) =>
  sim.state.messagesFor(appId, openid).map((m) => (m.body.text as { content: string }).content);
const modelCalls = (needle: string) =>
  sim.model.calls.filter((c) => c.messages.some((m) => m.role === 'user' && String(m.content).includes(needle)));
async function until(check: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}
const timeline = async (openid: string, appId = APP) => (await conversations.view(appId, openid)).timeline;

describe('AI replies', () => {
  it('answers a text with the model, its request carrying the system prompt and the previous turns', async () => {
    const u = user('ctx');
    await say(u, 'first question');
    await until(() => received(u).length === 1);
    await say(u, 'hello'); // answered by a rule: still part of the conversation
    await until(() => received(u).length === 2);
    await say(u, 'second question');
    await until(() => received(u).length === 3);
    const [first, , second] = received(u);
    expect(first?.split('\n')[0]).toBe(
      '[fake model] messages=2 system=1 user=1 assistant=0 tool=0 last="first question"',
    );
    expect(second?.split('\n')[0]).toBe(
      '[fake model] messages=6 system=1 user=3 assistant=2 tool=0 last="second question"',
    );
    const call = modelCalls('second question')[0];
    expect(call?.messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user', 'assistant', 'user']);
    expect(call?.messages.slice(1).map((m) => m.content)).toEqual([
      'first question',
      first,
      'hello',
      'hi',
      'second question',
    ]);
    expect(String(call?.messages[0]?.content)).toMatch(
      /^You answer questions about the wx-kf test shop\.\n\nYour answer is delivered as at most \d WeChat text messages/,
    );
    expect(call).toMatchObject({ model: 'wx-kf-fake', stream: true, tools: ['transfer_to_human'], maxTokens: 1000 });
    // The answers, the prompt and the key never reach the worker's log at info.
    await workers[0]?.waitFor('model answered'); // the log is written in batches
    const log = workers[0]?.output.join('\n') ?? '';
    expect(log).not.toContain(MODEL_KEY);
    expect(log).not.toContain('fake model');
    expect(log).not.toContain('test shop');

    // Forgetting the user erases everything kept about them.
    const erasure = await forgetUser(redis, APP, u);
    expect(erasure.erased).toMatchObject({ window: 1, contextEntries: 6, timelineEntries: 6 });
    expect(await redis.keys(`*${u}*`)).toEqual([]);
  });

  it('the same push delivered three times: one model call, one answer', async () => {
    const u = user('dup');
    const message = text(u, 'only once please');
    for (let i = 0; i < 3; i++) expect(await push(message)).toBe('success');
    await until(() => received(u).length === 1);
    await new Promise((r) => setTimeout(r, 500));
    expect(received(u)).toHaveLength(1);
    expect(modelCalls('only once please')).toHaveLength(1);
  });

  it('a send failing with a transient errcode, then succeeding: the same text is sent, the model called once', async () => {
    const u = user('retry');
    sim.fail({ path: '/cgi-bin/message/custom/send', appId: APP, script: [{ errcode: -1 }, { http: 503 }] });
    await say(u, 'a question worth retrying');
    await until(() => received(u).length === 1);
    expect(received(u)[0]?.split('\n')[0]).toBe(
      '[fake model] messages=2 system=1 user=1 assistant=0 tool=0 last="a question worth retrying"',
    );
    expect(modelCalls('a question worth retrying')).toHaveLength(1);
  });

  it('a 9 kB answer with 3 sends left and reserve 1: 2 messages of at most 2 048 bytes, in order, the rest recorded as not sent', async () => {
    const u = user('long');
    const keys = keyspaceOf(redis);
    // The user wrote (5 sends), then 2 went elsewhere: 3 left when the job runs. Its own grant is the same.
    const at = Math.floor(Date.now() / 1000) * 1000;
    await conversations.grant(APP, u, WINDOW_GRANTS.message, at);
    for (let i = 0; i < 2; i++) await conversations.take(APP, u);
    const message = text(u, 'explain everything #long 9000', at / 1000) as InboundMessage;
    sim.state.observe(APP, message);
    const job = inboundJob(APP, message, { mode: 'plain', format: 'json' });
    await inbound.add(job.name, job.data, job.opts);
    await until(async () => (await inbound.getJob(inboundJobId(APP, message)))?.finishedOn !== undefined);
    const sent = received(u);
    expect(sent).toHaveLength(2);
    for (const m of sent) expect(Buffer.byteLength(m)).toBeLessThanOrEqual(2048);
    expect(sent[0]?.startsWith('[fake model] messages=2')).toBe(true);
    expect(sent[1]?.endsWith('…')).toBe(true);
    const numbers = sent
      .join(' ')
      .match(/Sentence (\d+) |第(\d+)句/g)
      ?.map((s) => Number(s.replace(/\D/g, '')));
    expect(numbers).toEqual(numbers?.map((_, i) => i + 1)); // in order, none skipped
    expect(await redis.hget(keys.sendWindow(APP, u), 'left')).toBe('1'); // the reserve
    expect((await timeline(u)).map((e) => e.result)).toContainEqual(
      expect.stringMatching(/^not sent: the last \d+ bytes \(2 message\(s\) allowed/),
    );
    const call = modelCalls('#long 9000')[0];
    expect(String(call?.messages[0]?.content)).toContain('at most 2 WeChat text messages');
    expect(call?.maxTokens).toBe(4000);
  });

  it('a job whose answer was stored before its worker died sends that answer; the model is not asked again', async () => {
    const u = user('crash');
    const message = text(u, 'asked before the crash') as InboundMessage;
    sim.state.observe(APP, message);
    const job = inboundJob(APP, message, { mode: 'plain', format: 'json' });
    // What a worker killed mid-stream leaves: part of the answer stored (its claim lapsed since), nothing sent.
    const stored = {
      kind: 'answer',
      replies: [{ msgtype: 'text', text: { content: 'the stored part' } }],
      done: false,
    };
    await redis.hset(keyspaceOf(redis).aiAnswers(APP, u), job.data.msgKey, JSON.stringify(stored));
    await conversations.grant(APP, u, WINDOW_GRANTS.message);
    await inbound.add(job.name, job.data, job.opts);
    await until(() => received(u).length === 1);
    expect(received(u)).toEqual(['the stored part']);
    expect(sim.model.calls).toHaveLength(0);
    await until(async () => (await timeline(u)).some((e) => e.result.startsWith('answer interrupted')));
    // The job finished: its stored answer is gone.
    await until(async () => (await redis.hlen(keyspaceOf(redis).aiAnswers(APP, u))) === 0);
  });

  it('the model calls transfer_to_human: the hand-over text goes, the handoff opens, the next push is transferred', async () => {
    const u = user('human');
    await say(u, 'I want a #human please');
    await until(() => received(u).length === 1);
    expect(received(u)).toEqual([PERSON]);
    expect(modelCalls('#human')[0]?.outcome).toBe('tool_call');
    const handoff = JSON.parse((await redis.get(keyspaceOf(redis).handoff(APP, u))) ?? '{}');
    expect(handoff).toMatchObject({ open: true, reason: 'ai' });
    expect(await say(u, 'are you there?')).toContain('transfer_customer_service');
    await new Promise((r) => setTimeout(r, 300));
    expect(modelCalls('are you there?')).toHaveLength(0);
    expect(received(u)).toHaveLength(1);
  });

  it('the model failing with 500 after retries: the fallback text, never silence', async () => {
    const u = user('fail');
    sim.fail({ path: MODEL_PATH, script: [{ http: 500 }, { http: 500 }] });
    await say(u, 'will you fail?');
    await until(() => received(u).length === 1);
    expect(received(u)).toEqual([SORRY]);
    expect(sim.model.calls.map((c) => c.outcome)).toEqual([500, 500]); // AI_MAX_RETRIES=1
    await until(async () => (await timeline(u)).some((e) => e.result === 'not answered (server): onError sent'));
  });

  it('check: true and a risky verdict: the fallback goes, not the answer', async () => {
    const u = user('risky');
    await say(u, 'something #risky');
    await until(() => received(u).length === 1);
    expect(received(u)).toEqual([SORRY]);
    expect(sim.secChecks.map((c) => [c.openid, c.suggest])).toEqual([[u, 'risky']]);
    await until(async () => (await timeline(u)).some((e) => e.result === 'not answered (risky): onError sent'));
  });
});

describe('AI limits across workers', () => {
  it('two workers and at most 2 calls in flight for the account: never 3 at the fake model', async () => {
    await startWorker();
    await fetch(`${sim.url}/__sim/model`, { method: 'POST', body: JSON.stringify({ latencyMs: 300 }) });
    const users = Array.from({ length: 8 }, () => user('limit'));
    await Promise.all(users.map((u) => say(u, 'a slow question', LIMITED)));
    await until(() => users.every((u) => received(u, LIMITED).length === 1), 30_000);
    expect(sim.model.maxInFlight).toBe(2);
    expect(sim.model.calls).toHaveLength(8);
  });
});
