// Invariant 10 across processes: bursts of messages from many users, two worker processes at concurrency > 1,
// WeChat answering with random latency and failing 30 % of sends → each user's replies arrive in message order,
// none lost, none doubled (no worker is killed here, so the crash bound is 0). Pushes go through the ingress,
// which gives each user's messages their order; the simulator enforces WeChat's send windows.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '@wx-kf/ingress';
import { loadConfig } from '@wx-kf/shared/config';
import { createLogger } from '@wx-kf/shared/log';
import { INBOUND_QUEUE, openQueue } from '@wx-kf/shared/queue';
import { createRedis } from '@wx-kf/shared/redis';
import { isolatedRedisUrl, ServiceProcess } from '@wx-kf/testkit';
import { buildPush, Simulator, sampleMessage } from '@wx-kf/wechat-sim';
import { afterAll, describe, expect, it } from 'vitest';

const APP = 'wxorderfaults0001';
const SECRET = 'order-faults-secret';
const TOKEN = 'orderToken';
const USERS = 40;
const BURST = 5;
const dir = mkdtempSync(join(tmpdir(), 'wx-kf-order-'));
const rules = join(dir, 'rules.json');
writeFileSync(rules, JSON.stringify({ fallback: [{ msgtype: 'text', text: { content: '{{Content}}' } }] }));
const running: ServiceProcess[] = [];
afterAll(async () => {
  await Promise.all(running.map((p) => p.stop('SIGKILL')));
});

describe('order across a user’s messages (invariant 10)', () => {
  it(`${USERS} users × bursts of ${BURST}, two workers at concurrency 8, 30 % transient failures: every user's replies in order, none lost or doubled`, async () => {
    const sim = new Simulator({
      accounts: [{ appId: APP, appSecret: SECRET, type: 'miniprogram' }],
      sendWindows: true,
    });
    sim.slow({ path: '/cgi-bin/message/custom/send', minMs: 2, maxMs: 40, seed: 5 });
    sim.fail({ path: '/cgi-bin/message/custom/send', rate: 0.3, faults: [{ errcode: -1 }, { http: 502 }], seed: 11 });
    await sim.listen();
    const redisUrl = await isolatedRedisUrl();
    const env = {
      REDIS_URL: redisUrl,
      WECHAT_API_BASE: sim.url,
      WECHAT_APP_ID: APP,
      WECHAT_APP_SECRET: SECRET,
      WECHAT_TOKEN: TOKEN,
      REPLY_RULES_FILE: rules,
      WORKER_CONCURRENCY: '8',
    };
    const producer = createRedis(redisUrl, 'producer');
    const queue = openQueue(INBOUND_QUEUE, producer);
    const ingress = buildApp({
      config: loadConfig(env),
      queue,
      redis: producer,
      logger: createLogger('order-test', { level: 'silent' }),
    });
    try {
      for (let i = 0; i < 2; i++) running.push(ServiceProcess.start('worker', env));
      await Promise.all(running.map((w) => w.waitFor('worker started')));
      const users = Array.from({ length: USERS }, (_, i) => `o_order_${i}`);
      // Users push at once; each user's messages one after another, as WeChat delivers them.
      await Promise.all(
        users.map(async (u) => {
          for (let m = 0; m < BURST; m++) {
            const message = sampleMessage('text', { fromUser: u, content: `${u}#${m}` });
            sim.state.observe(APP, message);
            const p = buildPush({ account: { appId: APP, token: TOKEN }, message, format: 'json' });
            const res = await ingress.inject({
              method: 'POST',
              url: `/wechat/${APP}?${new URLSearchParams(p.query)}`,
              payload: p.body,
            });
            expect(res.body).toBe('success');
          }
        }),
      );
      const replies = (u: string) =>
        sim.state.messagesFor(APP, u).map((m) => (m.body.text as { content: string }).content);
      const deadline = Date.now() + 90_000;
      while (users.some((u) => replies(u).length < BURST) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      const expected = (u: string) => Array.from({ length: BURST }, (_, m) => `${u}#${m}`);
      const wrong = users.filter((u) => JSON.stringify(replies(u)) !== JSON.stringify(expected(u)));
      expect(wrong.map((u) => ({ user: u, got: replies(u) }))).toEqual([]);
    } finally {
      await Promise.all(running.splice(0).map((w) => w.stop()));
      await ingress.close();
      await queue.close();
      producer.disconnect();
      await sim.close();
    }
  }, 120_000);
});
