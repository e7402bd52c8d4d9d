import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createRedis,
  INBOUND_QUEUE,
  type InboundJobData,
  type InboundMessage,
  inboundJob,
  QUEUE_PREFIX,
} from '@wx-kf/shared';
import { isolatedRedisUrl, ServiceProcess } from '@wx-kf/testkit';
import { Simulator, sampleMessage } from '@wx-kf/wechat-sim';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

const APP_ID = 'wxprocesses000001';
const sim = new Simulator({ accounts: [{ appId: APP_ID, appSecret: 'proc-secret', type: 'miniprogram' }] });
const dir = mkdtempSync(join(tmpdir(), 'wx-kf-proc-'));
const rules = join(dir, 'rules.json');
writeFileSync(rules, JSON.stringify({ fallback: [{ msgtype: 'text', text: { content: 'got {{Content}}' } }] }));

let redisUrl: string;
let redis: Redis;
let inbound: Queue<InboundJobData>;
let running: ServiceProcess[] = [];

function worker(extra: NodeJS.ProcessEnv = {}): ServiceProcess {
  const p = ServiceProcess.start('worker', {
    REDIS_URL: redisUrl,
    WECHAT_API_BASE: sim.url,
    WECHAT_APP_ID: APP_ID,
    WECHAT_APP_SECRET: 'proc-secret',
    WECHAT_TOKEN: 'procToken',
    REPLY_RULES_FILE: rules,
    WORKER_CONCURRENCY: '50',
    WORKER_LOCK_DURATION_MS: '2000',
    ...extra,
  });
  running.push(p);
  return p;
}

async function pushMany(n: number, tag: string): Promise<string[]> {
  const users = Array.from({ length: n }, (_, i) => `o_${tag}_${i}`);
  await inbound.addBulk(
    users.map((fromUser) =>
      inboundJob(APP_ID, sampleMessage('text', { fromUser, content: fromUser }) as InboundMessage, {
        mode: 'safe',
        format: 'json',
      }),
    ),
  );
  return users;
}

function deliveries(users: string[]): { missing: number; duplicates: number } {
  const counts = new Map(users.map((u) => [u, 0]));
  for (const m of sim.state.messages) if (counts.has(m.touser)) counts.set(m.touser, (counts.get(m.touser) ?? 0) + 1);
  let missing = 0;
  let duplicates = 0;
  for (const c of counts.values()) {
    if (c === 0) missing++;
    if (c > 1) duplicates += c - 1;
  }
  return { missing, duplicates };
}

async function until(check: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  await sim.listen();
});
beforeEach(async () => {
  redisUrl = await isolatedRedisUrl();
  redis = createRedis(redisUrl, 'client');
  inbound = new Queue(INBOUND_QUEUE, { connection: redis, prefix: QUEUE_PREFIX });
  sim.reset();
});
afterEach(async () => {
  await Promise.all(running.map((p) => p.stop('SIGKILL')));
  running = [];
  await inbound.close();
  redis.disconnect();
});
afterAll(() => sim.close());

describe('worker processes', () => {
  it('a cold start of 3 workers sending 300 messages makes exactly one token request', async () => {
    sim.faults.addLatency({ path: '/cgi-bin/stable_token', fixedMs: 300 }); // widen the race window
    const workers = [worker(), worker(), worker()];
    await Promise.all(workers.map((w) => w.waitFor('worker started')));
    const users = await pushMany(300, 'cold');
    await until(() => deliveries(users).missing === 0);
    expect(sim.state.tokenRequestCount(APP_ID)).toBe(1);
    expect(deliveries(users).duplicates).toBe(0);
  });

  it('SIGKILL of a worker mid-run: every user still gets a reply; duplicates stay within what was in flight', async () => {
    sim.faults.addLatency({ path: '/cgi-bin/message/custom/send', fixedMs: 20 });
    const [victim, survivor] = [worker(), worker()];
    await Promise.all([victim.waitFor('worker started'), survivor.waitFor('worker started')]);
    const users = await pushMany(600, 'kill');
    await until(() => sim.state.messages.length >= 100);
    await victim.stop('SIGKILL');
    await until(() => deliveries(users).missing === 0, 60_000);
    const { duplicates } = deliveries(users);
    console.log(
      `[worker-processes] SIGKILL mid-run: 600 users, all delivered, ${duplicates} duplicate(s) (bound: 50 in flight)`,
    );
    expect(duplicates).toBeLessThanOrEqual(50);
  });

  it('SIGTERM drains: the worker exits 0 and nothing is lost or sent twice', async () => {
    sim.faults.addLatency({ path: '/cgi-bin/message/custom/send', fixedMs: 20 });
    const first = worker();
    await first.waitFor('worker started');
    const users = await pushMany(400, 'term');
    await until(() => sim.state.messages.length >= 50);
    expect(await first.stop('SIGTERM')).toBe(0);
    const afterStop = sim.state.messages.length;
    expect(afterStop).toBeLessThan(400);
    const second = worker();
    await second.waitFor('worker started');
    await until(() => deliveries(users).missing === 0);
    expect(deliveries(users).duplicates).toBe(0);
  });

  it('a bad configuration stops the start with one line per problem and exit code 1', async () => {
    const bad = worker({ WECHAT_TOKEN: 'x', WORKER_CONCURRENCY: 'many', REDIS_URL: 'http://nope' });
    expect(await bad.exited).toBe(1);
    expect(bad.output).toEqual([
      expect.stringMatching(/^worker: config: REDIS_URL: /),
      expect.stringMatching(/^worker: config: WECHAT_TOKEN: /),
      expect.stringMatching(/^worker: config: WORKER_CONCURRENCY: /),
    ]);
  });
});
