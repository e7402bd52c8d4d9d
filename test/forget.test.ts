// A user's right to deletion (issue 22): `pnpm queues forget <appId> <openid>` (its own process) and
// `DELETE /api/v1/users/:appId/:openid` erase everything kept about the user, and say what they erased. Real Redis.
import { buildAdminApp, Queues } from '@wx-kf/admin';
import { AiAnswers, AiLimits } from '@wx-kf/shared/ai';
import { loadConfig } from '@wx-kf/shared/config';
import { Conversations } from '@wx-kf/shared/conversation';
import { Handoffs } from '@wx-kf/shared/handoff';
import { createLogger } from '@wx-kf/shared/log';
import { INBOUND_QUEUE, inboundJob, openQueue } from '@wx-kf/shared/queue';
import { createRedis } from '@wx-kf/shared/redis';
import type { InboundMessage } from '@wx-kf/shared/wechat';
import { isolatedRedisUrl, ServiceProcess } from '@wx-kf/testkit';
import { sampleMessage } from '@wx-kf/wechat-sim';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const APP = 'wxforgettest00001';
const KEY = 'a-forget-test-api-key-0123456789';
const ACCOUNT = { WECHAT_APP_ID: APP, WECHAT_APP_SECRET: 'forget-secret', WECHAT_TOKEN: 'forgetToken' };
let redisUrl: string;
let redis: Redis;
let queues: Queues;
let admin: Awaited<ReturnType<typeof buildAdminApp>>;

/**
 * A user with one of everything wx-kf keeps: window, order, timeline, AI context, handoff, answer, rate, a job,
 * and a subscribe-message grant (with its mark).
 */
async function knownUser(openid: string): Promise<void> {
  const conversations = new Conversations(redis, {
    context: { entries: 10, maxAgeMs: 3600_000, accounts: new Set([APP]) },
  });
  const message = sampleMessage('text', { fromUser: openid, content: 'please forget me' }) as InboundMessage;
  const job = inboundJob(APP, message, { mode: 'plain', format: 'json' });
  await conversations.ingest(APP, 'miniprogram', job.opts.jobId, message, { receivedAt: Date.now() });
  await conversations.turn(APP, 'miniprogram', job.opts.jobId, message);
  const inbound = openQueue(INBOUND_QUEUE, redis);
  await inbound.add(job.name, job.data, job.opts);
  await inbound.close();
  const answers = new AiAnswers(redis);
  await answers.claim(APP, openid, job.opts.jobId, 'w');
  await answers.store(APP, openid, job.opts.jobId, 'w', { kind: 'answer', replies: [], done: true }, true);
  await new AiLimits(redis).withinUserRate(APP, openid, 10);
  await new Handoffs({ redis, idleMs: 60_000 }).open(APP, openid, { reason: 'operator', force: true });
  const accept = [{ templateId: 'TPL_forget', change: 'add' as const }];
  await conversations.grants.applyPush(APP, openid, `${job.opts.jobId}-popup`, accept, false);
  expect(await redis.keys(`*${openid}*`)).toHaveLength(9);
}
const ERASED = {
  window: 1,
  order: 1,
  timelineEntries: 1,
  contextEntries: 1,
  handoff: 1,
  storedAnswers: 1,
  modelRate: 1,
  modelClaim: 0,
  grants: 1,
  jobs: 1,
};

beforeAll(async () => {
  redisUrl = await isolatedRedisUrl();
  redis = createRedis(redisUrl, 'client');
  queues = new Queues(redis);
  const config = loadConfig({ ...ACCOUNT, REDIS_URL: redisUrl, ADMIN_PASSWORD: 'forget-admin', ADMIN_API_KEY: KEY });
  admin = await buildAdminApp(config, createLogger('forget-test', { level: 'silent' }), { queues });
});
afterAll(async () => {
  await admin.close();
  await queues.close();
  redis.disconnect();
});

describe('forgetting a user', () => {
  it('pnpm queues forget erases every key and job kept about the user and says what it erased', async () => {
    await knownUser('o_forget_cli');
    const run = async (...args: string[]) => {
      const p = ServiceProcess.start('queues', { REDIS_URL: redisUrl, ...ACCOUNT }, args);
      return { code: await p.exited, out: p.output.join('\n') };
    };
    const human = await run('forget', APP, 'o_forget_cli');
    expect(human).toEqual({
      code: 0,
      out: `erased ${APP} / o_forget_cli: send window 1, order 1, timeline entries 1, AI context entries 1, handoff 1, stored model answers 1, model rate counter 1, model claim 0, subscribe grants 1, queue jobs 1`,
    });
    expect(await redis.keys('*o_forget_cli*')).toEqual([]);
    // Again: nothing left, as JSON.
    const again = await run('forget', APP, 'o_forget_cli', '--json');
    expect(JSON.parse(again.out).erased).toEqual(Object.fromEntries(Object.keys(ERASED).map((k) => [k, 0])));
    expect(await run('forget', 'wxnobody', 'o_x')).toMatchObject({
      code: 1,
      out: expect.stringMatching(/unknown account/),
    });
    expect(await run('forget', APP, 'not an openid!')).toMatchObject({
      code: 1,
      out: expect.stringMatching(/not an OpenID/),
    });
  });

  it('DELETE /api/v1/users/:appId/:openid does the same behind the API key', async () => {
    await knownUser('o_forget_api');
    const del = (url: string, authorization = `Bearer ${KEY}`) =>
      admin.inject({ method: 'DELETE', url, headers: { authorization } });
    expect((await del(`/api/v1/users/${APP}/o_forget_api`, 'Bearer wrong-key-0123456789')).statusCode).toBe(401);
    expect(await redis.keys('*o_forget_api*')).toHaveLength(9);
    const res = await del(`/api/v1/users/${APP}/o_forget_api`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ appId: APP, openid: 'o_forget_api', erased: ERASED, jobsRunning: 0 });
    expect(await redis.keys('*o_forget_api*')).toEqual([]);
    expect((await del(`/api/v1/users/wxnobody/o_forget_api`)).statusCode).toBe(404);
    expect((await del(`/api/v1/users/${APP}/bad%20id`)).statusCode).toBe(400);
  });
});
