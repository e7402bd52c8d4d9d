import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INBOUND_QUEUE, type InboundJobData, inboundJob, OUTBOUND_QUEUE, openQueue } from '@wx-kf/shared/queue';
import { createRedis } from '@wx-kf/shared/redis';
import type { InboundMessage } from '@wx-kf/shared/wechat';
import { isolatedRedisUrl, ServiceProcess } from '@wx-kf/testkit';
import { Simulator, sampleMessage } from '@wx-kf/wechat-sim';
import type { Queue } from 'bullmq';
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
  const p = ServiceProcess.start('worker', { ...worker.env(redisUrl), ...extra });
  running.push(p);
  return p;
}
/** A worker's environment for the test account against this Redis database and the simulator. */
worker.env = (url: string): NodeJS.ProcessEnv => ({
  REDIS_URL: url,
  WECHAT_API_BASE: sim.url,
  WECHAT_APP_ID: APP_ID,
  WECHAT_APP_SECRET: 'proc-secret',
  WECHAT_TOKEN: 'procToken',
  REPLY_RULES_FILE: rules,
  WORKER_CONCURRENCY: '50',
  WORKER_LOCK_DURATION_MS: '2000',
});

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
  inbound = openQueue(INBOUND_QUEUE, redis);
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
    // What was in flight: the victim's 50 jobs (WORKER_CONCURRENCY), each with at most one send WeChat may have
    // accepted before the kill (custom/send has no id to drop a repeat by); and, on a machine busy enough for the
    // survivor's 2 s job locks to lapse while it works through the victim's jobs, its own 50 run again.
    const inFlight = 2 * 50;
    console.log(
      `[worker-processes] SIGKILL mid-run: 600 users, all delivered, ${duplicates} duplicate(s) (bound: ${inFlight} in flight)`,
    );
    expect(duplicates).toBeLessThanOrEqual(inFlight);
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

  it('a rules typo or a truncated accounts file stops the start with one line saying where', async () => {
    const typo = join(dir, 'typo.yaml');
    writeFileSync(typo, 'rules:\n  - when: { msgType: txt }\n    reply: [{ msgtype: text, text: { content: hi } }]\n');
    const badRules = worker({ REPLY_RULES_FILE: typo });
    expect(await badRules.exited).toBe(1);
    expect(badRules.output).toEqual([
      expect.stringMatching(new RegExp(`^worker: config: ${typo}:2:22: rules\\.0\\.when\\.msgType: Invalid option`)),
    ]);
    const accounts = join(dir, 'accounts.json');
    writeFileSync(accounts, `{ "accounts": [ { "appId": "${APP_ID}", "appSecret": "proc-sec`);
    const { WECHAT_APP_ID, WECHAT_APP_SECRET, WECHAT_TOKEN, ...env } = worker.env(redisUrl);
    const truncated = ServiceProcess.start('worker', { ...env, WECHAT_ACCOUNTS_FILE: accounts });
    running.push(truncated);
    expect(await truncated.exited).toBe(1);
    expect(truncated.output).toEqual([`worker: config: ${accounts}:1:71: invalid JSON: Unterminated string`]);
    expect(truncated.output.join('\n')).not.toContain('proc-sec');
  });

  it('a job naming a local file fails in a real worker process: nothing is uploaded or sent', async () => {
    const w = worker();
    await w.waitFor('worker started');
    const outbound = openQueue(OUTBOUND_QUEUE, redis);
    try {
      const job = await outbound.add('send', {
        appId: APP_ID,
        touser: 'o_exfil',
        msgKey: 'exfil',
        sent: 0,
        source: 'api',
        replies: [{ msgtype: 'image', image: { file: '/etc/passwd' } }],
      });
      const failedReason = async () => (await outbound.getJob(job.id as string))?.failedReason;
      await until(async () => Boolean(await failedReason()));
      expect(await failedReason()).toMatch(/^reply 0: image/);
      expect(sim.state.media.size).toBe(0);
      expect(sim.state.messages.filter((m) => m.touser === 'o_exfil')).toEqual([]);
    } finally {
      await outbound.close();
    }
  });
});
