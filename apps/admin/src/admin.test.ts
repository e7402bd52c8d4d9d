import { type Config, createLogger, createRedis, loadConfig, OUTBOUND_QUEUE } from '@wx-kf/shared';
import { isolatedRedisUrl } from '@wx-kf/testkit';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { Counter, Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAdminApp } from './admin.js';
import { Queues } from './queues.js';

const KEY = 'an-api-key-of-32-characters-long';
let redis: Redis;
let queues: Queues;
let app: FastifyInstance;
let config: Config;
const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
const send = (body: unknown, auth = `Bearer ${KEY}`) =>
  app.inject({ method: 'POST', url: '/api/v1/messages', payload: body as object, headers: { authorization: auth } });

beforeAll(async () => {
  const redisUrl = await isolatedRedisUrl();
  config = loadConfig({
    REDIS_URL: redisUrl,
    WECHAT_APP_ID: 'wxadminmp00000001',
    WECHAT_APP_SECRET: 's',
    WECHAT_TOKEN: 'tok123',
    ADMIN_PASSWORD: 'correct horse',
    ADMIN_API_KEY: KEY,
  });
  redis = createRedis(redisUrl, 'client');
  queues = new Queues(redis);
  const hosted = new Registry();
  new Counter({ name: 'wxkf_pushes_total', help: 'pushes', registers: [hosted] }).inc(7);
  app = await buildAdminApp(config, createLogger('admin-test', { level: 'silent' }), { queues, registries: [hosted] });
});
afterAll(async () => {
  await app.close();
  await queues.close();
  redis.disconnect();
});

describe('admin listener', () => {
  it('refuses the dashboard and metrics without the password', async () => {
    for (const url of ['/ui', '/metrics', '/']) {
      expect((await app.inject({ url })).statusCode, url).toBe(401);
      expect((await app.inject({ url, headers: { authorization: basic('admin', 'wrong') } })).statusCode, url).toBe(
        401,
      );
      expect(
        (await app.inject({ url, headers: { authorization: basic('root', 'correct horse') } })).statusCode,
        url,
      ).toBe(401);
    }
  });

  it('serves the dashboard and metrics with it', async () => {
    const auth = { authorization: basic('admin', 'correct horse') };
    const ui = await app.inject({ url: '/ui', headers: auth });
    expect(ui.statusCode).toBe(200);
    expect(ui.body).toContain('<html');
    const queuesApi = await app.inject({ url: '/ui/api/queues', headers: auth });
    expect(
      queuesApi
        .json()
        .queues.map((q: { name: string }) => q.name)
        .sort(),
    ).toEqual(['inbound', 'outbound']);
    const metrics = await app.inject({ url: '/metrics', headers: auth });
    expect(metrics.body).toContain('wxkf_pushes_total 7');
    expect(metrics.body).toMatch(/wxkf_queue_jobs\{queue="outbound",state="waiting"\} \d+/);
    expect(metrics.body).toContain('wxkf_queue_oldest_waiting_seconds{queue="inbound"}');
    expect(metrics.body).toContain('process_cpu_user_seconds_total');
  });

  it('queues custom messages sent through the API', async () => {
    const res = await send({
      appId: config.accounts[0]?.appId,
      touser: 'o_user',
      messages: [{ msgtype: 'text', text: { content: 'hello from an agent' } }],
    });
    expect(res.statusCode).toBe(202);
    const job = await queues.outbound.getJob(res.json().jobId);
    expect(job?.queueName).toBe(OUTBOUND_QUEUE);
    expect(job?.data).toMatchObject({ touser: 'o_user', source: 'api', sent: 0, msgKey: `api-${job?.id}` });
  });

  it.each([
    ['no key', '', {}, 401],
    ['a wrong key', 'Bearer nope', {}, 401],
    [
      'an unknown account',
      undefined,
      { appId: 'wxnobody', touser: 'o', messages: [{ msgtype: 'text', text: { content: 'x' } }] },
      400,
    ],
    [
      'no touser',
      undefined,
      { appId: 'wxadminmp00000001', messages: [{ msgtype: 'text', text: { content: 'x' } }] },
      400,
    ],
    ['no messages', undefined, { appId: 'wxadminmp00000001', touser: 'o', messages: [] }, 400],
    [
      'a type a Mini Program cannot send',
      undefined,
      { appId: 'wxadminmp00000001', touser: 'o', messages: [{ msgtype: 'wxcard', wxcard: { card_id: 'c' } }] },
      400,
    ],
    [
      'a local file (only rules may use files)',
      undefined,
      { appId: 'wxadminmp00000001', touser: 'o', messages: [{ msgtype: 'image', image: { file: '/etc/passwd' } }] },
      400,
    ],
  ])('refuses %s', async (_label, auth, body, status) => {
    const before = (await queues.stats()).outbound?.waiting;
    const res = await send(body, auth ?? `Bearer ${KEY}`);
    expect(res.statusCode).toBe(status);
    expect(res.json().message).toBeTypeOf('string');
    expect((await queues.stats()).outbound?.waiting).toBe(before);
  });

  it('names the bad message and field', async () => {
    const res = await send({
      appId: 'wxadminmp00000001',
      touser: 'o',
      messages: [
        { msgtype: 'text', text: { content: 'ok' } },
        { msgtype: 'text', text: {} },
      ],
    });
    expect(res.json().message).toBe('messages.1: text.content: Invalid input: expected string, received undefined');
  });
});
