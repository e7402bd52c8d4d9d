// Worker drain rate against a plain BullMQ loop (the ceiling), and push→send latency at a steady 250 and 500 pushes/s.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accountEnv } from '@wx-kf/shared/config';
import { Conversations } from '@wx-kf/shared/conversation';
import { INBOUND_QUEUE, type inboundJob, inboundJob as makeInboundJob, openQueue } from '@wx-kf/shared/queue';
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
/** Only these configurations, e.g. `1x50,2x50b` (processes x concurrency, b = bursts); default all. */
const ONLY = process.env.BENCH_CONFIGS;
/** Another checkout of wx-kf (dependencies installed): its worker drains each round too, for "no slower than before". */
const BASELINE = process.env.BENCH_BASELINE;
/** The steady rates of the push → send latency rows (pushes/s), e.g. `BENCH_RATES=50,250`. */
const RATES = (process.env.BENCH_RATES ?? '250,500').split(',').map(Number);
/** Messages per user in the ordered-burst row. */
const BURST = 5;
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

/** n messages: from n distinct users, or in bursts of `burst` consecutive messages per user (content = index). */
function inboundJobs(n: number, tag: string, burst = 1) {
  return Array.from({ length: n }, (_, i) =>
    makeInboundJob(
      ACCOUNT.appId,
      sampleMessage('text', {
        fromUser: `o_${tag}_${Math.floor(i / burst)}`,
        content: String(i % burst),
      }) as InboundMessage,
      { mode: 'safe', format: 'json' },
    ),
  );
}

/** What the ingress writes for each push beside its job: the user's window grant, order and timeline entry. */
async function ingest(redis: Redis, jobs: ReturnType<typeof inboundJob>[]): Promise<void> {
  const conversations = new Conversations(redis);
  for (let i = 0; i < jobs.length; i += 1000) {
    await Promise.all(
      jobs.slice(i, i + 1000).map((j) =>
        conversations.ingest(j.data.appId, 'miniprogram', j.opts.jobId, j.data.message, {
          receivedAt: j.data.receivedAt,
        }),
      ),
    );
  }
}

/** Stores jobs as the ingress does (`done`: jobs whose conversation state is written already). */
async function storeAsIngress(redis: Redis, jobs: ReturnType<typeof inboundJob>[], done = new Set<string>()) {
  const queue = openQueue(INBOUND_QUEUE, redis);
  for (let i = 0; i < jobs.length; i += 1000) {
    const batch = jobs.slice(i, i + 1000);
    await ingest(
      redis,
      batch.filter((j) => !done.has(j.opts.jobId)),
    );
    await queue.addBulk(batch);
  }
  await queue.close();
}

/** Users of a measured run whose replies did not arrive in message order (bursts only). */
async function outOfOrder(simUrl: string, tag: string): Promise<number> {
  const res = await request(`${simUrl}/__sim/messages?appId=${ACCOUNT.appId}`);
  const byUser = new Map<string, number[]>();
  for (const m of (await res.body.json()) as { touser: string; body: { text: { content: string } } }[]) {
    if (!m.touser.includes(tag)) continue;
    const seen = byUser.get(m.touser) ?? [];
    seen.push(Number(/(\d+)$/.exec(m.body.text.content)?.[1]));
    byUser.set(m.touser, seen);
  }
  return [...byUser.values()].filter((seq) => seq.some((v, i) => v !== i)).length;
}

/** Redis bytes per active user: the ledger alone (window, index) and the timeline per entry. */
async function conversationMemory(redisUrl: string, users = 10_000): Promise<{ ledger: number; perEntry: number }> {
  const redis = new Redis(redisUrl, { enableAutoPipelining: true });
  await redis.flushdb();
  const used = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? 0);
  const off = new Conversations(redis, { timeline: { entries: 0, maxAgeMs: 7 * 86_400_000 } });
  const on = new Conversations(redis);
  const message = (u: number, i: number) =>
    sampleMessage('text', { fromUser: `o_memory_user_${String(u).padStart(12, '0')}`, content: `message ${i}` });
  const base = await used();
  await Promise.all(
    Array.from({ length: users }, async (_, u) => {
      const m = message(u, 0);
      await off.ingest(ACCOUNT.appId, 'miniprogram', `job-${u}-0`, m, { receivedAt: Date.now() });
      await off.settle(ACCOUNT.appId, String(m.FromUserName), { release: `job-${u}-0` }); // answered: order empty
    }),
  );
  const ledger = (await used()) - base;
  const before = await used();
  const entries = 10; // 5 messages in, 5 replies out
  await Promise.all(
    Array.from({ length: users }, async (_, u) => {
      for (let i = 1; i <= entries / 2; i++) {
        const m = message(u, i);
        await on.ingest(ACCOUNT.appId, 'miniprogram', `job-${u}-${i}`, m, { receivedAt: Date.now() });
        const entry = { kind: 'text', summary: `reply to message ${i}`, jobId: `job-${u}-${i}`, result: 'sent' };
        await on.settle(ACCOUNT.appId, String(m.FromUserName), { entry, release: `job-${u}-${i}` });
      }
    }),
  );
  const perEntry = ((await used()) - before) / users / entries;
  redis.disconnect();
  return { ledger: ledger / users, perEntry };
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
  /** Bursts: users whose replies arrived out of message order. */
  outOfOrder?: number;
}

async function drain(
  kind: 'plain' | 'wx-kf' | 'baseline',
  processes: number,
  concurrency: number,
  redisUrl: string,
  simUrl: string,
  burst = 1,
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
            kind,
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
            [],
            kind === 'baseline' && BASELINE ? BASELINE : undefined,
          ),
    );
  }
  const tokens0 = await tokenRequests(simUrl);
  /** Adds n jobs of this kind (wx-kf: `prepared` when given) and waits until the simulator has every send. */
  const run = async (n: number, tag: string, prepared?: ReturnType<typeof inboundJobs>) => {
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
      const jobs = prepared ?? inboundJobs(n, `${processes}_${concurrency}_${tag}_${runId}`, burst);
      await storeAsIngress(redis, jobs, ingested);
    }
    await waitForCount(simUrl, count + n);
  };
  const runId = Date.now();
  const ingested = new Set<string>();
  // Both kinds warm up (JIT, connection pools, the token) on a first batch that is not measured.
  await run(WARM_UP, 'warm');
  // The ingress's part (window grant, order, timeline) is written before the clock starts: it is not the drain's.
  // The same jobs are then stored by the measured run (new ones would have other MsgIds, and their users an order
  // entry for a job that never comes).
  const measured =
    kind !== 'plain' ? inboundJobs(JOBS, `${processes}_${concurrency}_measured_${runId}`, burst) : undefined;
  if (measured) {
    await ingest(redis, measured);
    for (const j of measured) ingested.add(j.opts.jobId);
  }
  const cpu0 = workers.reduce((s, w) => s + cpuSeconds(w.child.pid as number), 0);
  const started = performance.now();
  await run(JOBS, 'measured', measured);
  const seconds = (performance.now() - started) / 1000;
  const cpu = workers.reduce((s, w) => s + cpuSeconds(w.child.pid as number), 0) - cpu0;
  const rss = Math.max(...workers.map((w) => rssMiB(w.child.pid as number)));
  const result: Drain = { rate: JOBS / seconds, cpu, rss, tokens: (await tokenRequests(simUrl)) - tokens0 };
  if (kind === 'wx-kf' && burst > 1) result.outOfOrder = await outOfOrder(simUrl, `_measured_${runId}_`);
  if (kind === 'wx-kf' && burst === 1) {
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
  rate: number,
): Promise<{ rate: number; p50: number; p99: number; max: number; sent: number; lost: number }> {
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
    rate,
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
  const latencies: Awaited<ReturnType<typeof steadyLatency>>[] = [];
  let memory: Awaited<ReturnType<typeof conversationMemory>> | undefined;
  try {
    for (const [processes, concurrency, burst] of [
      [1, 50, 1],
      [2, 50, 1],
      [4, 50, 1],
      [1, 200, 1],
      [2, 200, 1],
      [2, 50, BURST],
    ].filter(([p, c, b]) => !ONLY || ONLY.split(',').includes(`${p}x${c}${(b ?? 1) > 1 ? 'b' : ''}`)) as [
      number,
      number,
      number,
    ][]) {
      // Interleaved rounds, medians reported: this machine's CPU steal makes a single drain swing.
      const plains: Drain[] = [];
      const runs: Drain[] = [];
      const baselines: Drain[] = [];
      for (let round = 1; round <= ROUNDS; round++) {
        // Each round pairs the two sides back to back, and which goes first alternates: a machine whose speed
        // drifts during the run favours neither side.
        const plainFirst = round % 2 === 1;
        const first = await drain(plainFirst ? 'plain' : 'wx-kf', processes, concurrency, redis.url, simUrl, burst);
        const second = await drain(plainFirst ? 'wx-kf' : 'plain', processes, concurrency, redis.url, simUrl, burst);
        const [plain, ours] = plainFirst ? [first, second] : [second, first];
        plains.push(plain);
        runs.push(ours);
        if (BASELINE) baselines.push(await drain('baseline', processes, concurrency, redis.url, simUrl, burst));
        console.log(
          `[bench worker] ${processes}×c${concurrency}${burst > 1 ? ` bursts of ${burst}` : ''} round ${round}: plain ${plain.rate.toFixed(0)}/s, wx-kf ${ours.rate.toFixed(0)}/s${burst > 1 ? `, ${ours.outOfOrder} user(s) out of order` : ''}`,
        );
      }
      const rate = (drains: Drain[]) => median(drains.map((d) => d.rate));
      const perCpu = (drains: Drain[]) => median(drains.map((d) => JOBS / d.cpu));
      // The ratio of each round's pair, then their median (and range): steadier than a ratio of two medians.
      const ratios = runs.map((d, i) => d.rate / (plains[i] as Drain).rate);
      const pct = (r: number) => (r * 100).toFixed(0);
      rows.push([
        `${processes} × c${concurrency}${burst > 1 ? `, bursts of ${burst} per user (out of order: ${Math.max(...runs.map((d) => d.outOfOrder ?? 0))} users)` : ''}`,
        rate(plains).toFixed(0),
        rate(runs).toFixed(0),
        `${pct(median(ratios))} % (${pct(Math.min(...ratios))}–${pct(Math.max(...ratios))})`,
        perCpu(plains).toFixed(0),
        perCpu(runs).toFixed(0),
        Math.max(...runs.map((d) => d.rss)).toFixed(0),
        `${Math.max(...runs.map((d) => d.tokens))} / ${Math.max(...runs.map((d) => d.stormTokens ?? 0))}`,
        burst > 1 ? '—' : (median(runs.map((d) => d.bytesPerJob ?? 0)) / 1024).toFixed(1),
      ]);
      if (baselines.length > 0) {
        const baseRatios = baselines.map((d, i) => d.rate / (plains[i] as Drain).rate);
        rows.push([
          `  baseline (${BASELINE?.split('/').pop()}), same rounds`,
          '',
          rate(baselines).toFixed(0),
          `${pct(median(baseRatios))} % (${pct(Math.min(...baseRatios))}–${pct(Math.max(...baseRatios))})`,
          '',
          perCpu(baselines).toFixed(0),
          Math.max(...baselines.map((d) => d.rss)).toFixed(0),
          '',
          '',
        ]);
      }
    }
    memory = await conversationMemory(redis.url);
    // Half the rate as well: at 500/s the six processes keep this machine's two cores busy, so that row also
    // measures queueing for a core.
    for (const rate of RATES) {
      // A fresh simulator: one holding earlier messages slows down, and its GC pauses would show as latency.
      const fresh = await spawnSim(await freePort(), ACCOUNT_ENV, SIM_LATENCY_MS);
      try {
        latencies.push(await steadyLatency(redis.url, fresh.url, rate));
      } finally {
        await fresh.target.stop();
      }
    }
  } finally {
    await sim.stop();
    await redis.dispose();
  }
  return [
    `### Worker: drain rate of ${JOBS} messages (medians of ${ROUNDS} paired rounds, the side that goes first alternating), simulator answering custom/send in ${SIM_LATENCY_MS} ms`,
    '',
    table(
      [
        'processes × concurrency',
        'plain BullMQ + undici (sends/s)',
        'wx-kf (sends/s)',
        'wx-kf / plain: median of rounds (range)',
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
    `Conversations: every wx-kf message is stored as the ingress stores it (window grant, place in its user's order,`,
    `timeline entry) and each reply is checked against the window and recorded. The bursts row sends ${BURST} consecutive`,
    `messages per user (${JOBS / BURST} users): later messages wait, as delayed jobs, for the earlier ones' replies.`,
    '',
    '### Conversations: Redis memory per active user (10 000 users)',
    '',
    table(
      [
        'send window ledger (window hash + open-windows index), bytes per user',
        'timeline, bytes per entry',
        'timeline at 200 entries, KiB per user',
      ],
      [
        [
          memory?.ledger.toFixed(0) ?? 0,
          memory?.perEntry.toFixed(0) ?? 0,
          memory ? ((memory.perEntry * 200) / 1024).toFixed(1) : 0,
        ],
      ],
    ),
    '',
    `### Push → send latency at a steady rate for 10 s, after 4 s of warm-up (ingress + 2 workers at concurrency 50, safe JSON, simulator at ${SIM_LATENCY_MS} ms)`,
    '',
    table(
      ['pushes/s', 'pushes', 'replies missing', 'p50 ms', 'p99 ms', 'max ms'],
      latencies.map((l) => [l.rate, l.sent, l.lost, l.p50, l.p99, l.max]),
    ),
  ].join('\n');
}
