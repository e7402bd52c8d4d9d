import { loadConfig } from '@wx-kf/shared/config';
import { createLogger } from '@wx-kf/shared/log';
import { createRedis } from '@wx-kf/shared/redis';
import { isolatedRedisUrl, ServiceProcess } from '@wx-kf/testkit';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAdminApp } from './admin.js';
import { Queues } from './queues.js';

const APP = 'wxhandoffmetric01';
const KEY = 'a-metrics-test-api-key-32-chars!!';
const ENV = {
  WECHAT_APP_ID: APP,
  WECHAT_APP_SECRET: 's',
  WECHAT_TOKEN: 'tok123',
  WECHAT_ACCOUNT_TYPE: 'miniprogram',
  WECHAT_HANDOFF: 'on',
  ADMIN_PASSWORD: 'metrics-pass',
  ADMIN_API_KEY: KEY,
};
const BASIC = `Basic ${Buffer.from('admin:metrics-pass').toString('base64')}`;
let redisUrl: string;
let redis: Redis;
let queues: Queues;
let app: FastifyInstance;

const metrics = async () => (await app.inject({ url: '/metrics', headers: { authorization: BASIC } })).body;
const count = (body: string, change: string) =>
  Number(
    new RegExp(`^wxkf_handoffs_total\\{app_id="${APP}",change="${change}",reason="operator"\\} (\\d+)$`, 'm').exec(
      body,
    )?.[1] ?? 0,
  );
const session = (method: 'PUT' | 'DELETE', openid: string) =>
  app.inject({
    method,
    url: `/api/v1/sessions/${APP}/${openid}`,
    headers: { authorization: `Bearer ${KEY}` },
    ...(method === 'PUT' ? { payload: {} } : {}),
  });
/** `pnpm queues session <action> <openid>` as its own process (the way an operator runs it). */
async function cli(action: 'open' | 'close', openid: string): Promise<void> {
  const p = ServiceProcess.start('queues', { REDIS_URL: redisUrl, ...ENV }, ['session', action, openid]);
  expect(await p.exited, p.output.join('\n')).toBe(0);
}

beforeAll(async () => {
  redisUrl = await isolatedRedisUrl();
  redis = createRedis(redisUrl, 'client');
  queues = new Queues(redis);
  // The admin listener alone (not hosted by an ingress or worker): the counter is its own.
  app = await buildAdminApp(loadConfig({ REDIS_URL: redisUrl, ...ENV }), createLogger('m', { level: 'silent' }), {
    queues,
  });
});
afterAll(async () => {
  await app?.close();
  await queues?.close();
  redis?.disconnect();
});

describe('wxkf_handoffs_total on the admin /metrics', () => {
  it('is served, and counts the handoffs the admin API and the queue CLI open and close', async () => {
    const before = await metrics();
    expect(before).toContain('# TYPE wxkf_handoffs_total counter');

    expect((await session('PUT', 'o_api_user')).statusCode).toBe(200);
    expect((await session('DELETE', 'o_api_user')).statusCode).toBe(200);
    let body = await metrics();
    expect(count(body, 'opened')).toBe(1);
    expect(count(body, 'closed')).toBe(1);

    await cli('open', 'o_cli_user');
    await cli('close', 'o_cli_user');
    await cli('open', 'o_cli_user');
    body = await metrics();
    expect(count(body, 'opened')).toBe(3);
    expect(count(body, 'closed')).toBe(2);
    // Counted once: a second scrape adds nothing.
    expect(count(await metrics(), 'opened')).toBe(3);
  }, 30_000);
});
