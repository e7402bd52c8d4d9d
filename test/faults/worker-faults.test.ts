// Reliability suite (pnpm test:faults): workers killed at random, and a WeChat API failing 30 % of sends.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@wx-kf/shared/config';
import { createLogger } from '@wx-kf/shared/log';
import { INBOUND_QUEUE, inboundJob, OUTBOUND_JOB_OPTIONS, OUTBOUND_QUEUE, openQueue } from '@wx-kf/shared/queue';
import { createRedis } from '@wx-kf/shared/redis';
import type { InboundMessage } from '@wx-kf/shared/wechat';
import { isolatedRedisUrl, ServiceProcess } from '@wx-kf/testkit';
import { Simulator, sampleMessage } from '@wx-kf/wechat-sim';
import { startWorker } from '@wx-kf/worker';
import { afterAll, describe, expect, it } from 'vitest';

const APP_ID = 'wxworkerfaults001';
const SECRET = 'worker-faults-secret';
const dir = mkdtempSync(join(tmpdir(), 'wx-kf-faults-'));
const rules = join(dir, 'rules.json');
writeFileSync(rules, JSON.stringify({ fallback: [{ msgtype: 'text', text: { content: 'reply to {{Content}}' } }] }));
const running: ServiceProcess[] = [];
afterAll(async () => {
  await Promise.all(running.map((p) => p.stop('SIGKILL')));
});

async function until(check: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function pushAll(redisUrl: string, users: string[]): Promise<void> {
  const redis = createRedis(redisUrl, 'client');
  const inbound = openQueue(INBOUND_QUEUE, redis);
  const jobs = users.map((u) =>
    inboundJob(APP_ID, sampleMessage('text', { fromUser: u, content: u }) as InboundMessage, {
      mode: 'safe',
      format: 'json',
    }),
  );
  for (let i = 0; i < jobs.length; i += 500) await inbound.addBulk(jobs.slice(i, i + 500));
  await inbound.close();
  redis.disconnect();
}

/** The worker's configuration for the test account, against this Redis database and simulator. */
const workerEnv = (redisUrl: string, apiBase: string) => ({
  REDIS_URL: redisUrl,
  WECHAT_API_BASE: apiBase,
  WECHAT_APP_ID: APP_ID,
  WECHAT_APP_SECRET: SECRET,
  WECHAT_TOKEN: 'faultsToken',
  REPLY_RULES_FILE: rules,
});

function tally(sim: Simulator, users: string[]) {
  const counts = new Map(users.map((u) => [u, 0]));
  for (const m of sim.state.messages) if (counts.has(m.touser)) counts.set(m.touser, (counts.get(m.touser) ?? 0) + 1);
  const values = [...counts.values()];
  return {
    missing: values.filter((c) => c === 0).length,
    duplicates: values.reduce((n, c) => n + Math.max(0, c - 1), 0),
  };
}

describe('fault suite: workers', () => {
  it('workers SIGKILLed at random during 2 000 messages: every user gets a reply; duplicates within what was in flight', async () => {
    const sim = new Simulator({ accounts: [{ appId: APP_ID, appSecret: SECRET, type: 'miniprogram' }] });
    sim.faults.addLatency({ path: '/cgi-bin/message/custom/send', minMs: 5, maxMs: 40, seed: 3 });
    await sim.listen();
    const redisUrl = await isolatedRedisUrl();
    const env = {
      ...workerEnv(redisUrl, sim.url),
      WORKER_CONCURRENCY: '25',
      WORKER_LOCK_DURATION_MS: '2000',
    };
    const start = async () => {
      const w = ServiceProcess.start('worker', env);
      running.push(w);
      await w.waitFor('worker started');
      return w;
    };
    const workers = [await start(), await start()];
    const users = Array.from({ length: 2000 }, (_, i) => `o_kill_${i}`);
    await pushAll(redisUrl, users);
    let kills = 0;
    let seed = 7;
    while (tally(sim, users).missing > 0 && kills < 6) {
      await new Promise((r) => setTimeout(r, 700));
      seed = (seed * 48271) % 2147483647;
      const victim = workers.splice(seed % workers.length, 1)[0];
      await victim?.stop('SIGKILL');
      kills++;
      workers.push(await start());
    }
    await until(() => tally(sim, users).missing === 0, 90_000);
    const { duplicates } = tally(sim, users);
    // Per kill: the victim's 25 jobs in flight, each with at most one send WeChat may have accepted before the kill,
    // and, on a machine busy enough for a survivor's 2 s job locks to lapse, as many of the survivor's run again.
    console.log(
      `[faults] ${kills} SIGKILLs during 2000 messages: all delivered, ${duplicates} duplicate(s) (bound: ${kills} × 2 × 25 in flight)`,
    );
    expect(kills).toBeGreaterThan(0);
    expect(duplicates).toBeLessThanOrEqual(kills * 2 * 25);
    await sim.close();
  }, 120_000); // up to 6 kills and restarts, then up to 90 s to drain: a busy machine takes longer than 20 s

  it('WeChat failing 30 % of sends: retryable ones delivered exactly once, permanent ones failed once with their code', async () => {
    const sim = new Simulator({ accounts: [{ appId: APP_ID, appSecret: SECRET, type: 'miniprogram' }] });
    sim.fail({
      path: '/cgi-bin/message/custom/send',
      rate: 0.3,
      seed: 42,
      faults: [
        { errcode: -1 },
        { errcode: 45011 },
        { http: 502 },
        { drop: true },
        { delayMs: 300 },
        { errcode: 40001 },
      ],
    });
    const permanent = new Set(Array.from({ length: 20 }, (_, i) => `o_perm_${i}`));
    // Permanent refusals for some users, whatever the dice say.
    sim.app.addHook('preHandler', async (req, reply) => {
      const touser = (() => {
        try {
          return JSON.parse(String(req.body)).touser as string;
        } catch {
          return '';
        }
      })();
      if (req.url.startsWith('/cgi-bin/message/custom/send') && permanent.has(touser)) {
        await reply.send({ errcode: 45015, errmsg: 'response out of time limit or subscription is canceled' });
      }
    });
    await sim.listen();
    const redisUrl = await isolatedRedisUrl();
    const config = loadConfig(workerEnv(redisUrl, sim.url));
    const worker = await startWorker(config, createLogger('faults', { level: 'silent' }), {
      outboundJobOptions: { ...OUTBOUND_JOB_OPTIONS, backoff: { type: 'exponential', delay: 20, jitter: 0.5 } },
    });
    const users = [...Array.from({ length: 480 }, (_, i) => `o_flaky_${i}`), ...permanent];
    await pushAll(redisUrl, users);
    const ok = users.filter((u) => !permanent.has(u));
    const redis = createRedis(redisUrl, 'client');
    // A reply is first sent by the push's own (inbound) job; only retries move to the outbound queue.
    const queues = [openQueue(INBOUND_QUEUE, redis), openQueue(OUTBOUND_QUEUE, redis)];
    const allFailed = async () => (await Promise.all(queues.map((q) => q.getFailed(0, -1)))).flat();
    await until(async () => tally(sim, ok).missing === 0 && (await allFailed()).length === permanent.size, 90_000);
    const failed = await allFailed();
    const { duplicates } = tally(sim, ok);
    const sends = await worker.metrics.sends.get();
    console.log(
      `[faults] 30 % failing API: ${ok.length} delivered once each, ${failed.length} permanent failures; sends by errcode ${JSON.stringify(Object.fromEntries(sends.values.map((v) => [v.labels.errcode, v.value])))}`,
    );
    expect(duplicates).toBe(0);
    expect(failed.map((j) => j.failedReason)).toEqual(
      Array(permanent.size).fill('45015 response out of time limit or subscription is canceled'),
    );
    expect(failed.every((j) => j.attemptsMade === 1)).toBe(true);
    expect(tally(sim, [...permanent]).missing).toBe(permanent.size);
    await Promise.all(queues.map((q) => q.close()));
    redis.disconnect();
    await worker.close();
    await sim.close();
  });
});
