import { createLogger } from '@wx-kf/shared/log';
import { INBOUND_QUEUE, type InboundJobData, openQueue } from '@wx-kf/shared/queue';
import { createRedis } from '@wx-kf/shared/redis';
import { LogCapture, RedisServer } from '@wx-kf/testkit';
import { buildPush, sampleMessage } from '@wx-kf/wechat-sim';
import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from './app.js';

const account = {
  appId: 'wxoutage000000001',
  appSecret: 's',
  token: 'tok123',
  type: 'miniprogram',
  security: 'any',
} as const;
const logs = new LogCapture();
let server: RedisServer;
let producer: Redis;
let queue: Queue<InboundJobData>;
let app: ReturnType<typeof buildApp>;

const post = (push: ReturnType<typeof buildPush>) =>
  app.inject({
    method: 'POST',
    url: `/wechat/${account.appId}?${new URLSearchParams(push.query)}`,
    payload: push.body,
  });

async function until(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  server = await RedisServer.start({ appendOnly: true });
  producer = createRedis(server.url, 'producer');
  queue = openQueue(INBOUND_QUEUE, producer);
  await queue.waitUntilReady();
  app = buildApp({
    config: { accounts: [account], ingress: { timestampToleranceSeconds: 3600 } },
    queue,
    redis: producer,
    logger: createLogger('t', { destination: logs }),
    enqueueTimeoutMs: 500,
  });
});
afterAll(async () => {
  await app.close();
  await queue.close();
  producer.disconnect();
  await server.dispose();
});

async function storedCount(): Promise<number> {
  const reader = new Redis(server.url);
  const view = openQueue(INBOUND_QUEUE, reader);
  try {
    return (await view.getJobCounts('waiting')).waiting ?? 0;
  } finally {
    await view.close();
    reader.disconnect();
  }
}

describe('Redis outage', () => {
  it('answers 503 while Redis is down, never success, and recovers without a restart', async () => {
    const before = buildPush({ account, message: sampleMessage('text') });
    const first = await post(before);
    if (first.body !== 'success') console.log(logs.text);
    expect(first.body).toBe('success');

    await server.stop('SIGKILL');
    const during = buildPush({ account, message: sampleMessage('text') });
    const started = Date.now();
    const refused = await post(during);
    expect(refused.statusCode).toBe(503);
    expect(Date.now() - started).toBeLessThan(4000); // well inside WeChat's 5 s
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);

    await server.resume();
    await until(async () => (await app.inject({ method: 'GET', url: '/readyz' })).statusCode === 200);
    // WeChat retries the refused push: now it is stored; the one acknowledged before the crash survived (AOF).
    const retried = await post(during);
    if (retried.body !== 'success') console.log(logs.lines.slice(-3).join('\n'));
    expect(retried.body).toBe('success');
    expect(await storedCount()).toBe(2);
  });

  it('answers 503 when Redis is too slow, and the retry stores the push exactly once', async () => {
    const count = await storedCount();
    const blocker = new Redis(server.url);
    await blocker.ping(); // connected, so the sleep starts now even on a busy machine
    const sleeping = blocker.call('DEBUG', 'SLEEP', '1.5');
    await new Promise((r) => setTimeout(r, 50));
    const push = buildPush({ account, message: sampleMessage('text') });
    const slow = await post(push);
    expect(slow.statusCode).toBe(503);
    await sleeping;
    blocker.disconnect();
    // The late write may still land after the 503; either way WeChat's retry leaves exactly one job.
    expect((await post(push)).body).toBe('success');
    expect(await storedCount()).toBe(count + 1);
  });
});
