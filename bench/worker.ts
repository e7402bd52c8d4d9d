// Worker drain rate against a plain BullMQ loop (the ceiling), and push→send latency at a steady 500 pushes/s.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accountEnv } from '@wx-kf/shared/config';
import { INBOUND_QUEUE, inboundJob, openQueue } from '@wx-kf/shared/queue';
import type { InboundMessage } from '@wx-kf/shared/wechat';
import { freePort, RedisServer } from '@wx-kf/testkit';
import { buildPush, sampleMessage } from '@wx-kf/wechat-sim';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import { cpuSeconds, median, rssMiB, spawnIngress, spawnSim, spawnTarget, type Target, table } from './lib.js';

const ACCOUNT = {
  appId: 'wxbenchworker0001',
  appSecret: 'bench-worker-secret',
  token: 'benchToken',
  aesKey: 'BenchmarkEncodingAESKeyForWxKfWorkers000000',
};
const JOBS = Number(process.env.BENCH_JOBS ?? 6000);
const WARM_UP = 3000;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SIM_LATENCY_MS = 20;
const dir = mkdtempSync(join(tmpdir(), 'wx-kf-bench-'));
const rules = join(dir, 'rules.json');
writeFileSync(rules, JSON.stringify({ fallback: [{ msgtype: 'text', text: { content: 'got {{Content}}' } }] }));

const ACCOUNT_ENV = accountEnv(ACCOUNT);

async function simState(
  simUrl: string,
): Promise<{ messages: number; tokenRequests: Record<string, { classic: number; stable: number }> }> {
  const res = await request(`${simUrl}/__sim/state`);
  return (await res.body.json()) as {
    messages: number;
    tokenRequests: Record<string, { classic: number; stable: number }>;
  };
}

async function simCount(simUrl: string): Promise<number> {
  return (await simState(simUrl)).messages;
}

async function tokenRequests(simUrl: string): Promise<number> {
  const counts = (await simState(simUrl)).tokenRequests[ACCOUNT.appId];
  return counts ? counts.classic + counts.stable : 0;
}

async function waitForCount(simUrl: string, target: number, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await simCount(simUrl)) < target) {
    if (Date.now() > deadline) throw new Error(`only ${await simCount(simUrl)} of ${target} messages arrived`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function inboundJobs(n: number, tag: string) {
  return Array.from({ length: n }, (_, i) =>
    inboundJob(
      ACCOUNT.appId,
      sampleMessage('text', { fromUser: `o_${tag}_${i}`, content: String(i) }) as InboundMessage,
      { mode: 'safe', format: 'json' },
    ),
  );
}

interface Drain {
  rate: number;
  cpu: number;
  rss: number;
  /** Token requests WeChat saw during the run (cold start: an empty Redis). */
  tokens: number;
  /** wx-kf only: token requests for a second batch sent right after every token was invalidated. */
  stormTokens?: number;
  /** Redis memory per retained job, bytes (wx-kf only). */
  bytesPerJob?: number;
}

async function drain(
  kind: 'plain' | 'wx-kf',
  processes: number,
  concurrency: number,
  redisUrl: string,
  simUrl: string,
): Promise<Drain> {
  const redis = new Redis(redisUrl);
  await redis.flushdb();
  // An empty simulator for every drain: one that holds earlier drains' messages slows down as it grows.
  for (const [path, body] of [
    ['/__sim/reset', {}],
    ['/__sim/latency', { fixedMs: SIM_LATENCY_MS }],
  ] as const) {
    await request(`${simUrl}${path}`, { method: 'POST', body: JSON.stringify(body) }).then((r) => r.body.dump());
  }
  const workers: Target[] = [];
  for (let i = 0; i < processes; i++) {
    workers.push(
      kind === 'plain'
        ? await spawnTarget(
            'plain',
            'bench/targets/plain-worker.ts',
            [redisUrl, simUrl, ACCOUNT.appId, ACCOUNT.appSecret, String(concurrency)],
            {},
            'ready',
          )
        : await spawnTarget(
            'worker',
            'apps/worker/src/main.ts',
            [],
            {
              ...ACCOUNT_ENV,
              REDIS_URL: redisUrl,
              WECHAT_API_BASE: simUrl,
              REPLY_RULES_FILE: rules,
              WORKER_CONCURRENCY: String(concurrency),
              LOG_LEVEL: 'info',
            },
            'worker started',
          ),
    );
  }
  const tokens0 = await tokenRequests(simUrl);
  /** Adds n jobs of this kind and waits until the simulator has received every send. */
  const run = async (n: number, tag: string) => {
    const count = await simCount(simUrl);
    if (kind === 'plain') {
      const queue = new Queue('plain', { connection: redis, prefix: 'bench' });
      const jobs = Array.from({ length: n }, (_, i) => ({
        name: 'send',
        data: { touser: `o_plain_${tag}_${i}`, msgtype: 'text', text: { content: 'x' } },
        opts: { removeOnComplete: { count: 1000 } },
      }));
      for (let i = 0; i < jobs.length; i += 1000) await queue.addBulk(jobs.slice(i, i + 1000));
      await queue.close();
    } else {
      const queue = openQueue(INBOUND_QUEUE, redis);
      const jobs = inboundJobs(n, `${processes}_${concurrency}_${tag}_${Date.now()}`);
      for (let i = 0; i < jobs.length; i += 1000) await queue.addBulk(jobs.slice(i, i + 1000));
      await queue.close();
    }
    await waitForCount(simUrl, count + n);
  };
  // Both kinds warm up (JIT, connection pools, the token) on a first batch that is not measured.
  await run(WARM_UP, 'warm');
  const cpu0 = workers.reduce((s, w) => s + cpuSeconds(w.child.pid as number), 0);
  const started = performance.now();
  await run(JOBS, 'measured');
  const seconds = (performance.now() - started) / 1000;
  const cpu = workers.reduce((s, w) => s + cpuSeconds(w.child.pid as number), 0) - cpu0;
  const rss = Math.max(...workers.map((w) => rssMiB(w.child.pid as number)));
  const result: Drain = { rate: JOBS / seconds, cpu, rss, tokens: (await tokenRequests(simUrl)) - tokens0 };
  if (kind === 'wx-kf') {
    const view = openQueue(INBOUND_QUEUE, redis);
    const retained = (await view.getJobCounts('completed')).completed ?? 0;
    await view.close();
    const used = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? 0);
    result.bytesPerJob = retained ? used / retained : 0;
    // An invalidation storm: every send of the next batch gets 40001 once.
    await request(`${simUrl}/__sim/accounts/${ACCOUNT.appId}/invalidate-tokens`, { method: 'POST' }).then((r) =>
      r.body.dump(),
    );
    const stormStart = await tokenRequests(simUrl);
    await run(500, 'storm');
    result.stormTokens = (await tokenRequests(simUrl)) - stormStart;
  }
  await Promise.all(workers.map((w) => w.stop()));
  redis.disconnect();
  return result;
}

async function steadyLatency(
  redisUrl: string,
  simUrl: string,
): Promise<{ p50: number; p99: number; max: number; sent: number; lost: number }> {
  const redis = new Redis(redisUrl);
  await redis.flushdb();
  redis.disconnect();
  const port = await freePort();
  const env = {
    ...ACCOUNT_ENV,
    REDIS_URL: redisUrl,
    WECHAT_API_BASE: simUrl,
    REPLY_RULES_FILE: rules,
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'info',
  };
  const ingress = await spawnIngress(port, env);
  const workers = [
    await spawnTarget('worker', 'apps/worker/src/main.ts', [], { ...env, LOG_LEVEL: 'info' }, 'worker started'),
    await spawnTarget('worker', 'apps/worker/src/main.ts', [], { ...env, LOG_LEVEL: 'info' }, 'worker started'),
  ];
  const dispatcher = new Agent({ connections: 64 });
  const url = `http://127.0.0.1:${port}/wechat/${ACCOUNT.appId}`;
  const sentAt = new Map<string, number>();
  const rate = 500;
  const seconds = 10;
  const warmUp = 4 * rate; // four seconds at the same rate, not measured: JIT, pools, the token
  const tag = `steady_${Date.now()}`;
  const inflight: Promise<unknown>[] = [];
  const start = Date.now();
  for (let i = 0; i < warmUp + rate * seconds; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const user = `o_${tag}_${i}`;
    const push = buildPush({
      account: ACCOUNT,
      message: sampleMessage('text', { fromUser: user }),
      mode: 'safe',
      format: 'json',
    });
    if (i >= warmUp) sentAt.set(user, Date.now());
    inflight.push(
      request(`${url}?${new URLSearchParams(push.query)}`, { method: 'POST', body: push.body, dispatcher }).then((r) =>
        r.body.dump(),
      ),
    );
  }
  await Promise.allSettled(inflight);
  const deadline = Date.now() + 60_000;
  let messages: { touser: string; at: number }[] = [];
  while (Date.now() < deadline) {
    const res = await request(`${simUrl}/__sim/messages?appId=${ACCOUNT.appId}`);
    messages = ((await res.body.json()) as { touser: string; at: number }[]).filter((m) => sentAt.has(m.touser));
    if (messages.length >= sentAt.size) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const latencies = messages.map((m) => m.at - (sentAt.get(m.touser) ?? m.at)).sort((a, b) => a - b);
  await Promise.all([ingress.stop(), ...workers.map((w) => w.stop())]);
  await dispatcher.close();
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0;
  return {
    p50: pct(50),
    p99: pct(99),
    max: latencies.at(-1) ?? 0,
    sent: sentAt.size,
    lost: sentAt.size - messages.length,
  };
}

export async function benchWorker(): Promise<string> {
  const redis = await RedisServer.start();
  const simPort = await freePort();
  const { url: simUrl, target: sim } = await spawnSim(simPort, ACCOUNT_ENV, SIM_LATENCY_MS);
  const rows: (string | number)[][] = [];
  let latency: Awaited<ReturnType<typeof steadyLatency>> | undefined;
  try {
    for (const [processes, concurrency] of [
      [1, 50],
      [2, 50],
      [4, 50],
      [1, 200],
      [2, 200],
    ] as const) {
      // Interleaved rounds, medians reported: this machine's CPU steal makes a single drain swing.
      const plains: Drain[] = [];
      const runs: Drain[] = [];
      for (let round = 1; round <= ROUNDS; round++) {
        const plain = await drain('plain', processes, concurrency, redis.url, simUrl);
        const ours = await drain('wx-kf', processes, concurrency, redis.url, simUrl);
        plains.push(plain);
        runs.push(ours);
        console.log(
          `[bench worker] ${processes}×c${concurrency} round ${round}: plain ${plain.rate.toFixed(0)}/s, wx-kf ${ours.rate.toFixed(0)}/s`,
        );
      }
      const rate = (drains: Drain[]) => median(drains.map((d) => d.rate));
      const perCpu = (drains: Drain[]) => median(drains.map((d) => JOBS / d.cpu));
      rows.push([
        `${processes} × c${concurrency}`,
        rate(plains).toFixed(0),
        rate(runs).toFixed(0),
        `${((rate(runs) / rate(plains)) * 100).toFixed(0)} %`,
        perCpu(plains).toFixed(0),
        perCpu(runs).toFixed(0),
        Math.max(...runs.map((d) => d.rss)).toFixed(0),
        `${Math.max(...runs.map((d) => d.tokens))} / ${Math.max(...runs.map((d) => d.stormTokens ?? 0))}`,
        (median(runs.map((d) => d.bytesPerJob ?? 0)) / 1024).toFixed(1),
      ]);
    }
    // A fresh simulator: the one above holds every message of the drains, and its GC pauses would show as latency.
    const fresh = await spawnSim(await freePort(), ACCOUNT_ENV, SIM_LATENCY_MS);
    try {
      latency = await steadyLatency(redis.url, fresh.url);
    } finally {
      await fresh.target.stop();
    }
  } finally {
    await sim.stop();
    await redis.dispose();
  }
  return [
    `### Worker: drain rate of ${JOBS} messages (median of ${ROUNDS} interleaved rounds), simulator answering custom/send in ${SIM_LATENCY_MS} ms`,
    '',
    table(
      [
        'processes × concurrency',
        'plain BullMQ + undici (sends/s)',
        'wx-kf (sends/s)',
        'wx-kf / plain',
        'plain sends per CPU-s',
        'wx-kf sends per CPU-s',
        'wx-kf worker RSS MiB',
        'token requests: cold / storm',
        'Redis KiB per retained message',
      ],
      rows,
    ),
    '',
    "The plain loop only POSTs a ready-made body per job. wx-kf does everything in the push's own job: rules and",
    "templates, the pause check, the cluster's token (from Redis; a process reuses it for at most 5 s, dropped at once",
    'when any process replaces it), the send, metrics and a log line per message. Each side first drains',
    `${WARM_UP} messages that are not measured (JIT, pools, the token); every drain starts with an empty simulator.`,
    'Token requests: the most WeChat saw in a round from a cold start (empty Redis), and for 500 more messages sent',
    'right after every token was invalidated (each send gets 40001 once). Redis KiB per retained message: used_memory',
    'over the messages whose jobs Redis still holds (the inbound job, de-duplication key, token).',
    '',
    `### Push → send latency at a steady 500 pushes/s for 10 s, after 4 s of warm-up (ingress + 2 workers at concurrency 50, safe JSON, simulator at ${SIM_LATENCY_MS} ms)`,
    '',
    table(
      ['pushes', 'replies missing', 'p50 ms', 'p99 ms', 'max ms'],
      [[latency?.sent ?? 0, latency?.lost ?? 0, latency?.p50 ?? 0, latency?.p99 ?? 0, latency?.max ?? 0]],
    ),
  ].join('\n');
}
