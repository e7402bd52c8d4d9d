import { loadConfig } from '@wx-kf/shared/config';
import { createLogger } from '@wx-kf/shared/log';
import { INBOUND_QUEUE } from '@wx-kf/shared/queue';
import { createRedis, Keyspace, type RedisClient } from '@wx-kf/shared/redis';
import { isolatedRedisUrl } from '@wx-kf/testkit';
import { UnrecoverableError, Worker } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAdminApp } from './admin.js';
import { Queues } from './queues.js';

// The dashboard of a 16-shard layout (on one Redis: the layout, not the cluster, is what the board reads).
const SHARDS = 16;
const APP = 'wxboard0000000001';
const USERS = Array.from({ length: 40 }, (_, i) => `o_board_${i}`);
const ADMIN = `Basic ${Buffer.from('admin:board-pass').toString('base64')}`;
let redisUrl: string;
let redis: RedisClient;
let queues: Queues;
let app: FastifyInstance;
const keys = new Keyspace(SHARDS);
const shardOf = (user: string) => keys.userShard(APP, user);
const get = (url: string) => app.inject({ url, headers: { authorization: ADMIN } });
const put = (url: string) => app.inject({ method: 'PUT', url, headers: { authorization: ADMIN } });

/** A real (manual) worker of one shard takes its next job and fails it for good, as a 45015 would. */
async function failNext(shard: number): Promise<void> {
  const worker = new Worker(INBOUND_QUEUE, null, {
    connection: createRedis({ kind: 'single', url: redisUrl, shards: SHARDS, durability: 'local' }, 'worker'),
    prefix: keys.queuePrefix(shard),
  });
  const job = await worker.getNextJob('token');
  await job?.moveToFailed(new UnrecoverableError('45015 response out of time limit'), 'token');
  await worker.close();
}

beforeAll(async () => {
  redisUrl = await isolatedRedisUrl();
  redis = createRedis({ kind: 'single', url: redisUrl, shards: SHARDS, durability: 'local' }, 'client');
  queues = new Queues(redis);
  const config = loadConfig({
    REDIS_URL: redisUrl,
    REDIS_SHARDS: String(SHARDS),
    WECHAT_APP_ID: APP,
    WECHAT_APP_SECRET: 's',
    WECHAT_TOKEN: 'tok123',
    ADMIN_PASSWORD: 'board-pass',
  });
  app = await buildAdminApp(config, createLogger('dashboard-test', { level: 'silent' }), { queues });
  for (const [i, user] of USERS.entries()) {
    const message = { FromUserName: user, MsgType: 'text', Content: `hello ${i}`, MsgId: String(1000 + i) };
    await queues.inbounds[shardOf(user)]?.add('push', { appId: APP, message }, { jobId: `${APP}-m${1000 + i}` });
  }
  // Two failed jobs, on two different shards.
  await failNext(shardOf(USERS[0] ?? ''));
  await failNext(shardOf(USERS.find((u) => shardOf(u) !== shardOf(USERS[0] ?? '')) ?? ''));
});
afterAll(async () => {
  await app?.close();
  await queues?.close();
  redis?.disconnect();
});

describe('dashboard over 16 shards', () => {
  it('lists two queues, inbound and outbound, with the counts of every shard added up', async () => {
    expect(new Set(USERS.map(shardOf)).size).toBeGreaterThan(8); // the jobs really are spread
    const res = await get('/ui/api/queues');
    expect(res.statusCode).toBe(200);
    const listed: { name: string; counts: Record<string, number> }[] = res.json().queues;
    expect(listed.map((q) => q.name).sort()).toEqual(['inbound', 'outbound']);
    expect(listed.find((q) => q.name === 'inbound')?.counts).toMatchObject({ waiting: 38, failed: 2, completed: 0 });
    expect((await get('/ui/queue/inbound')).statusCode).toBe(200);
    expect((await get('/ui/queue/inbound')).body).toContain('<html');
  });

  it('pages through the jobs of every shard as one list, newest first', async () => {
    const seen: { id: string; timestamp: number }[] = [];
    for (let page = 1; page <= 4; page++) {
      const res = await get(`/ui/api/queues?activeQueue=inbound&status=waiting&page=${page}&jobsPerPage=10`);
      const inbound = res.json().queues.find((q: { name: string }) => q.name === 'inbound');
      expect(inbound.pagination.pageCount).toBe(4);
      seen.push(...inbound.jobs);
    }
    expect(seen).toHaveLength(38);
    expect(new Set(seen.map((j) => j.id)).size).toBe(38);
    const stamps = seen.map((j) => j.timestamp);
    expect(stamps).toEqual([...stamps].sort((a, b) => b - a));
    const shards = new Set(seen.map((j) => shardOf(`o_board_${Number(j.id.split('-m')[1]) - 1000}`)));
    expect(shards.size).toBeGreaterThan(8);
  });

  it('opens, retries and retries-all jobs on the shard that holds them; pauses every shard', async () => {
    const failed = await get('/ui/api/queues?activeQueue=inbound&status=failed&page=1&jobsPerPage=10');
    const ids: string[] = failed
      .json()
      .queues.find((q: { name: string }) => q.name === 'inbound')
      .jobs.map((j: { id: string }) => j.id);
    expect(ids).toHaveLength(2);
    const [first, second] = ids;
    const job = await get(`/ui/api/queues/inbound/${first}`);
    expect(job.statusCode).toBe(200);
    expect(job.json().job.failedReason).toContain('45015');
    expect((await put(`/ui/api/queues/inbound/${first}/retry`)).statusCode).toBe(204);
    expect(await (await queues.find(first ?? ''))?.getState()).toBe('waiting');
    expect((await put('/ui/api/queues/inbound/retry/failed')).statusCode).toBeLessThan(300);
    expect(await (await queues.find(second ?? ''))?.getState()).toBe('waiting');

    expect((await put('/ui/api/queues/inbound/pause')).statusCode).toBeLessThan(300);
    expect((await Promise.all(queues.inbounds.map((q) => q.isPaused()))).every(Boolean)).toBe(true);
    expect((await put('/ui/api/queues/inbound/resume')).statusCode).toBeLessThan(300);
    expect((await Promise.all(queues.inbounds.map((q) => q.isPaused()))).some(Boolean)).toBe(false);
  });
});
