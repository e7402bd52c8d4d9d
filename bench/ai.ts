// `pnpm bench ai`: AI replies through the product (ingress and worker processes, Redis, the simulator's fake model at
// a fixed speed): push → first send and push → last send for a 1 kB and a 6 kB answer, streamed and not; and the
// worker's own overhead per AI message against calling the fake model directly. Bounded: about a minute.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accountEnv } from '@wx-kf/shared/config';
import { INBOUND_QUEUE, type InboundJobData, inboundJobId, openQueue } from '@wx-kf/shared/queue';
import { createRedis } from '@wx-kf/shared/redis';
import type { InboundMessage } from '@wx-kf/shared/wechat';
import { freePort, RedisServer } from '@wx-kf/testkit';
import { buildPush, Simulator, sampleMessage } from '@wx-kf/wechat-sim';
import type { Queue } from 'bullmq';
import OpenAI from 'openai';
import { Agent, request } from 'undici';
import { cpuSeconds, median, spawnIngress, spawnTarget, type Target, table } from './lib.js';

const ACCOUNT = { appId: 'wxbenchai00000001', appSecret: 'bench-ai-secret', token: 'benchAiToken' };
/** The fake model's speed for the latency rows: time to the first token, then tokens per second. */
const SPEED = { latencyMs: 300, tokensPerSecond: 400 };
const SAMPLES: Record<number, number> = { 1000: 5, 6000: 3 };
const OVERHEAD_MESSAGES = 40;
const CPU_MESSAGES = 300;
const dir = mkdtempSync(join(tmpdir(), 'wx-kf-bench-ai-'));
const rules = join(dir, 'rules.yaml');
writeFileSync(
  rules,
  `rules:
  - when: { msgType: text, equals: rule }
    reply: [{ msgtype: text, text: { content: answered by a rule } }]
fallback: { ai: { maxTokens: 4000 } }
`,
);

interface Bench {
  sim: Simulator;
  /** Sends per user, with when the simulator took them. */
  sends: Map<string, number[]>;
  env: NodeJS.ProcessEnv;
  ingressUrl: string;
  dispatcher: Agent;
  /** The inbound queue, to see a message's job finish. */
  inbound: Queue<InboundJobData>;
}

let n = 0;
/** Pushes one text from a new user through the ingress; resolves the user, its job and when the push left. */
async function push(b: Bench, content: string): Promise<{ user: string; jobId: string; at: number }> {
  const user = `o_bench_ai_${++n}`;
  const message = sampleMessage('text', { fromUser: user, content });
  const p = buildPush({ account: ACCOUNT, message, mode: 'plain', format: 'json' });
  const at = Date.now();
  const res = await request(`${b.ingressUrl}?${new URLSearchParams(p.query)}`, {
    method: 'POST',
    body: p.body,
    dispatcher: b.dispatcher,
  });
  await res.body.dump();
  return { user, at, jobId: inboundJobId(ACCOUNT.appId, message as InboundMessage) };
}

/** The sends `user` received once the job of their message has finished (all its messages are out). */
async function received(b: Bench, user: string, jobId: string): Promise<number[]> {
  const deadline = Date.now() + 60_000;
  while ((await b.inbound.getJob(jobId))?.finishedOn === undefined) {
    if (Date.now() > deadline) throw new Error(`${user}: the job ${jobId} did not finish`);
    await new Promise((r) => setTimeout(r, 10));
  }
  const got = b.sends.get(user) ?? [];
  if (got.length === 0) throw new Error(`${user}: no message arrived`);
  return got;
}

/** push → first and last send, and the messages, over sequential samples of a `bytes` answer. */
async function latency(b: Bench, bytes: number) {
  const first: number[] = [];
  const last: number[] = [];
  let messages = 0;
  for (let i = 0; i < (SAMPLES[bytes] ?? 3); i++) {
    const { user, at, jobId } = await push(b, `tell me everything #long ${bytes}`);
    const sends = await received(b, user, jobId);
    first.push((sends[0] ?? at) - at);
    last.push((sends.at(-1) ?? at) - at);
    messages = sends.length;
  }
  return { first: median(first), last: median(last), messages };
}

/** The same answer straight from the fake model (the official client, streaming): first and last token. */
async function direct(b: Bench, bytes: number, samples: number) {
  const client = new OpenAI({ baseURL: `${b.sim.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const first: number[] = [];
  const last: number[] = [];
  for (let i = 0; i < samples; i++) {
    const started = Date.now();
    let firstAt = 0;
    const stream = await client.chat.completions.create({
      model: 'wx-kf-fake',
      messages: [
        { role: 'system', content: 'x'.repeat(600) },
        { role: 'user', content: bytes ? `tell me everything #long ${bytes}` : 'a short question' },
      ],
      stream: true,
    });
    for await (const chunk of stream) if (!firstAt && chunk.choices[0]?.delta.content) firstAt = Date.now();
    first.push(firstAt - started);
    last.push(Date.now() - started);
  }
  return { first: median(first), last: median(last) };
}

async function startWorker(b: Bench, extra: NodeJS.ProcessEnv): Promise<Target> {
  return spawnTarget('worker', 'apps/worker/src/main.ts', [], { ...b.env, ...extra }, 'worker started');
}

/** Sequential short messages with an instant model: the AI path against a rules reply and the model alone. */
async function overhead(b: Bench) {
  b.sim.model.settings = { ...b.sim.model.settings, latencyMs: 0, tokensPerSecond: 0 };
  const one = async (content: string) => {
    const { user, at, jobId } = await push(b, content);
    return ((await received(b, user, jobId))[0] ?? at) - at;
  };
  const ai: number[] = [];
  const rule: number[] = [];
  for (let i = 0; i < OVERHEAD_MESSAGES; i++) {
    ai.push(await one('a short question'));
    rule.push(await one('rule'));
  }
  const model = await direct(b, 0, OVERHEAD_MESSAGES);
  return { ai: median(ai), rule: median(rule), model: model.last };
}

/** Worker CPU per message for a burst of AI messages and of rules messages (instant model). */
async function cpuPerMessage(b: Bench, worker: Target) {
  const burst = async (content: string) => {
    const pid = worker.child.pid ?? 0;
    const before = cpuSeconds(pid);
    const users = await Promise.all(Array.from({ length: CPU_MESSAGES }, () => push(b, content)));
    await Promise.all(users.map(({ user, jobId }) => received(b, user, jobId)));
    return ((cpuSeconds(pid) - before) * 1000) / CPU_MESSAGES;
  };
  return { ai: await burst('a short question'), rule: await burst('rule') };
}

export async function benchAi(): Promise<string> {
  const redis = await RedisServer.start();
  const sends = new Map<string, number[]>();
  const sim = new Simulator({
    accounts: [{ ...ACCOUNT, type: 'miniprogram' }],
    model: SPEED,
    onMessage: (m) => sends.set(m.touser, [...(sends.get(m.touser) ?? []), m.at]),
  });
  const simUrl = await sim.listen();
  const port = await freePort();
  const env = {
    ...accountEnv(ACCOUNT),
    REDIS_URL: redis.url,
    WECHAT_API_BASE: simUrl,
    REPLY_RULES_FILE: rules,
    AI_BASE_URL: `${simUrl}/v1`,
    AI_MODEL: 'wx-kf-fake',
    LOG_LEVEL: 'info',
  };
  const connection = createRedis(redis.url, 'client');
  const b: Bench = {
    sim,
    sends,
    env,
    ingressUrl: `http://127.0.0.1:${port}/wechat/${ACCOUNT.appId}`,
    dispatcher: new Agent(),
    inbound: openQueue(INBOUND_QUEUE, connection),
  };
  const ingress = await spawnIngress(port, env);
  const rows: (string | number)[][] = [];
  try {
    for (const stream of [true, false]) {
      const worker = await startWorker(b, { AI_STREAM: String(stream) });
      await push(b, 'warm up').then(({ user, jobId }) => received(b, user, jobId));
      for (const bytes of [1000, 6000]) {
        const r = await latency(b, bytes);
        rows.push([`${bytes / 1000} kB`, stream ? 'streamed' : 'plain', r.messages, r.first, r.last]);
      }
      await worker.stop();
    }
    for (const bytes of [1000, 6000]) {
      const d = await direct(b, bytes, SAMPLES[bytes] ?? 3);
      rows.push([`${bytes / 1000} kB`, 'the fake model alone (streamed)', '–', d.first, d.last]);
    }
    const worker = await startWorker(b, {});
    const o = await overhead(b);
    const cpu = await cpuPerMessage(b, worker);
    await worker.stop();
    return report(rows, o, cpu);
  } finally {
    await ingress.stop();
    await sim.close();
    await b.dispatcher.close();
    await b.inbound.close();
    connection.disconnect();
    await redis.dispose();
  }
}

function report(
  rows: (string | number)[][],
  o: { ai: number; rule: number; model: number },
  cpu: { ai: number; rule: number },
) {
  const ms = (v: number) => v.toFixed(1);
  return [
    `### AI replies: push → first and last send (ms, median; fake model ${SPEED.latencyMs} ms to the first token, ${SPEED.tokensPerSecond} tokens/s; ingress + 1 worker, plain JSON)`,
    '',
    table(['answer', 'how', 'messages', 'push → first send', 'push → last send (or last token)'], rows),
    '',
    `### The worker's own overhead per AI message (instant fake model, ${OVERHEAD_MESSAGES} sequential short messages; CPU over ${CPU_MESSAGES} at once)`,
    '',
    table(
      ['', 'push → send, median ms', 'worker CPU per message, ms'],
      [
        ['rules reply', ms(o.rule), ms(cpu.rule)],
        ['AI reply', ms(o.ai), ms(cpu.ai)],
        ['the fake model alone (a direct streamed call)', ms(o.model), '–'],
        ['AI overhead: AI − rules − model', ms(o.ai - o.rule - o.model), ms(cpu.ai - cpu.rule)],
      ],
    ),
  ].join('\n');
}
