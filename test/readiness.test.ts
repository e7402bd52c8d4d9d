import { accountEnv } from '@wx-kf/shared/config';
import { INBOUND_QUEUE, openQueue } from '@wx-kf/shared/queue';
import { createRedis } from '@wx-kf/shared/redis';
import { freePort, isolatedRedisUrl, RedisServer, ServiceProcess } from '@wx-kf/testkit';
import { buildPush, deliverPush, sampleMessage } from '@wx-kf/wechat-sim';
import { afterAll, describe, expect, it } from 'vitest';

// Issue 27, "Ready means writable": right after "ingress listening" a restarted ingress answered its first pushes
// 503 "Stream isn't writeable …" (logged as errors); a worker whose Redis was down at start logged ~9 lines a second.
const account = {
  appId: 'wxreadiness000001',
  appSecret: 'readiness-app-secret',
  token: 'readinessToken',
  aesKey: 'ReadinessProcessTestEncodingAESKey000000000',
};
const env = (extra: NodeJS.ProcessEnv) => ({ ...accountEnv(account), HOST: '127.0.0.1', LOG_LEVEL: 'info', ...extra });
const running: ServiceProcess[] = [];
const servers: RedisServer[] = [];
afterAll(async () => {
  await Promise.all(running.map((p) => p.stop('SIGKILL')));
  await Promise.all(servers.map((s) => s.stop()));
});

const errorLines = (p: ServiceProcess) =>
  p.output.filter((l) => /"level":(50|60)/.test(l) || /writeable|ECONNREFUSED/.test(l));

describe('ready means writable', () => {
  it('an ingress takes its first pushes right after "ingress listening": no 503, no error line; /readyz agrees', async () => {
    const redisUrl = await isolatedRedisUrl();
    for (let round = 0; round < 2; round++) {
      // Started (and then restarted) with pushes sent the moment it says it listens.
      const port = await freePort();
      const ingress = ServiceProcess.start('ingress', env({ REDIS_URL: redisUrl, PORT: String(port) }));
      running.push(ingress);
      await ingress.waitFor('ingress listening');
      const base = `http://127.0.0.1:${port}`;
      const [ready, answers] = await Promise.all([
        fetch(`${base}/readyz`),
        Promise.all(
          Array.from({ length: 20 }, () =>
            deliverPush(
              `${base}/wechat/${account.appId}`,
              buildPush({ account, message: sampleMessage('text'), mode: 'safe', format: 'json' }),
              { timeoutMs: 3000 },
            ),
          ),
        ),
      ]);
      expect(ready.status).toBe(200);
      expect(answers.map((r) => r[0]?.status)).toEqual(Array(20).fill(200));
      expect(errorLines(ingress)).toEqual([]);
      expect(await ingress.stop('SIGTERM')).toBe(0);
    }
  });

  it('/readyz answers 503 while Redis cannot take writes, 200 once it can', async () => {
    const redisPort = await freePort();
    const port = await freePort();
    const ingress = ServiceProcess.start(
      'ingress',
      env({ REDIS_URL: `redis://127.0.0.1:${redisPort}`, PORT: String(port) }),
    );
    running.push(ingress);
    await ingress.waitFor('ingress listening');
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/readyz`)).status).toBe(503);
    const server = await RedisServer.start({ port: redisPort });
    servers.push(server);
    const deadline = Date.now() + 10_000;
    while ((await fetch(`${base}/readyz`)).status !== 200) {
      if (Date.now() > deadline) throw new Error(`not ready:\n${ingress.output.join('\n')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const [answer] = await deliverPush(
      `${base}/wechat/${account.appId}`,
      buildPush({ account, message: sampleMessage('text'), mode: 'safe', format: 'json' }),
      { timeoutMs: 3000 },
    );
    expect(answer?.status).toBe(200);
    expect(await ingress.stop('SIGTERM')).toBe(0);
  });

  it('a worker whose Redis is unreachable at start says so once, retries quietly, then works', async () => {
    const redisPort = await freePort();
    const worker = ServiceProcess.start(
      'worker',
      env({ REDIS_URL: `redis://127.0.0.1:${redisPort}`, WECHAT_API_BASE: 'http://127.0.0.1:9' }),
    );
    running.push(worker);
    await new Promise((r) => setTimeout(r, 3000));
    // Three seconds of retries: "worker started" and one line saying Redis is unreachable, nothing else.
    const lines = worker.output.filter((l) => /redis|ECONNREFUSED|connect/i.test(l));
    expect(lines, worker.output.join('\n')).toHaveLength(1);
    expect(lines[0]).toContain('redis connection error');
    expect(worker.output, worker.output.join('\n')).toHaveLength(2);
    const server = await RedisServer.start({ port: redisPort });
    servers.push(server);
    await worker.waitFor('redis connection restored', 15_000);
    // Then it works: it takes a job from the inbound queue.
    const redis = createRedis(`redis://127.0.0.1:${redisPort}`, 'client');
    const queue = openQueue(INBOUND_QUEUE, redis);
    const deadline = Date.now() + 10_000;
    while ((await queue.getWorkersCount()) === 0) {
      if (Date.now() > deadline) throw new Error(`no worker registered:\n${worker.output.join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const job = await queue.add('inbound', { bogus: true } as never);
    while (!(await job.isFailed()) && !(await job.isCompleted())) {
      if (Date.now() > deadline) throw new Error(`job not taken:\n${worker.output.join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await queue.close();
    redis.disconnect();
    expect(worker.output.filter((l) => l.includes('redis connection'))).toHaveLength(2);
    expect(await worker.stop('SIGTERM')).toBe(0);
  });
});
