import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AccountConfig } from '@wx-kf/shared/config';
import { Conversations } from '@wx-kf/shared/conversation';
import { Handoffs } from '@wx-kf/shared/handoff';
import { createLogger } from '@wx-kf/shared/log';
import { INBOUND_QUEUE, type InboundJobData, openQueue } from '@wx-kf/shared/queue';
import { createRedis, Keyspace } from '@wx-kf/shared/redis';
import { isolatedRedisUrl, LogCapture } from '@wx-kf/testkit';
import { buildPush, type Push, sampleMessage } from '@wx-kf/wechat-sim';
import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from './app.js';

const keyspace = Keyspace.SINGLE;

// A push the ingress has stored before is answered as it was the first time and changes nothing else: not the
// send window, not the handoff, not the user's order. Each delivery goes through the real app and Redis.

const dir = mkdtempSync(join(tmpdir(), 'wx-kf-redelivery-'));
const rules = join(dir, 'rules.yaml');
writeFileSync(rules, 'rules:\n  - when: { msgType: text, contains: 人工 }\n    transfer: true\n');
const account = (appId: string, type: AccountConfig['type']): AccountConfig => ({
  appId,
  appSecret: `${appId}-secret`,
  token: 'redeliveryToken',
  type,
  security: 'any',
  replyRules: rules,
});
const mp = account('wxredelivery00001', 'miniprogram');
const oa = account('wxredelivery00002', 'officialaccount');

let redis: Redis;
let queue: Queue<InboundJobData>;
let app: FastifyInstance;
let conversations: Conversations;
let handoffs: Handoffs;
const logs = new LogCapture();

const post = (a: AccountConfig, p: Push) =>
  app.inject({
    method: 'POST',
    url: `/wechat/${a.appId}?${new URLSearchParams(p.query)}`,
    payload: p.body,
    headers: { 'content-type': p.contentType },
  });
/** WeChat's re-delivery: the same message, signed again (a new timestamp and nonce). */
const redeliver = (a: AccountConfig, p: Push) => buildPush({ account: a, message: p.message, mode: p.mode });
const outcomes = () => logs.records.filter((r) => r.msg === 'push').map((r) => r.outcome);
const jobCount = async () => (await queue.getJobs(['waiting', 'delayed', 'active', 'completed', 'failed'])).length;
const nowSeconds = () => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  redis = createRedis(await isolatedRedisUrl(), 'producer');
  queue = openQueue(INBOUND_QUEUE, redis);
  app = buildApp({
    config: { accounts: [mp, oa], ingress: { timestampToleranceSeconds: 300 }, handoff: { idleMs: 60_000 } },
    queue,
    redis,
    logger: createLogger('ingress-redelivery-test', { destination: logs }),
  });
  conversations = new Conversations(redis);
  handoffs = new Handoffs({ redis, idleMs: 60_000 });
});
beforeEach(async () => {
  await queue.obliterate({ force: true });
  await redis.flushdb();
  logs.lines.length = 0;
});
afterAll(async () => {
  await app.close();
  await queue.close();
  redis.disconnect();
});

describe('a re-delivered push changes nothing', () => {
  // Our clock 2 s behind WeChat's (CreateTime in our future), and an old sample (CreateTime 10 minutes back):
  // both used to be granted "at arrival", so a later re-delivery granted again.
  it.each([
    ['our clock 2 s behind WeChat', 2],
    ['a CreateTime 10 minutes old', -600],
  ])('the send window: one reply sent, 4 left, and a re-delivery leaves 4 (%s)', async (_, offset) => {
    const user = `o_window_${offset < 0 ? 'old' : 'ahead'}`;
    const message = sampleMessage('text', { fromUser: user, createTime: nowSeconds() + offset });
    const first = buildPush({ account: mp, message, mode: 'plain' });
    expect((await post(mp, first)).body).toBe('success');
    expect((await conversations.take(mp.appId, user)).ok).toBe(true);
    const before = await conversations.window(mp.appId, user);
    expect(before).toMatchObject({ open: true, left: 4 });

    await new Promise((r) => setTimeout(r, 1100)); // a later second: "at arrival" would differ now
    expect((await post(mp, redeliver(mp, first))).body).toBe('success');
    expect(await conversations.window(mp.appId, user)).toEqual(before);
    expect(outcomes()).toEqual(['stored', 'duplicate']);
    expect(await jobCount()).toBe(1);
  });

  it('the handoff: a transfer push replayed after the session closed is transferred again, but reopens nothing', async () => {
    const first = buildPush({ account: mp, message: sampleMessage('text', { fromUser: 'o_ho', content: '转人工' }) });
    expect((await post(mp, first)).body).toContain('transfer_customer_service');
    expect(await handoffs.get(mp.appId, 'o_ho')).toMatchObject({ open: true, reason: 'rule' });
    // The timeline says so itself (the job, which says it too, is kept only a day).
    expect((await conversations.view(mp.appId, 'o_ho')).timeline.map((e) => e.result)).toEqual(['transferred']);
    await handoffs.close(mp.appId, 'o_ho', { reason: 'operator', force: true });
    const closed = await redis.get(keyspace.handoff(mp.appId, 'o_ho'));
    const ttl = await redis.pttl(keyspace.handoff(mp.appId, 'o_ho'));

    const again = await post(mp, redeliver(mp, first));
    expect(again.body).toContain('transfer_customer_service'); // the same answer as the first time
    expect(await redis.get(keyspace.handoff(mp.appId, 'o_ho'))).toBe(closed);
    expect(await redis.pttl(keyspace.handoff(mp.appId, 'o_ho'))).toBeLessThanOrEqual(ttl);
    expect(outcomes()).toEqual(['transferred', 'duplicate']);
  });

  it('the handoff: a re-delivery of a message during a handoff does not extend it', async () => {
    await handoffs.open(mp.appId, 'o_ext', { reason: 'operator', force: true });
    await redis.pexpire(keyspace.handoff(mp.appId, 'o_ext'), 5_000);
    const first = buildPush({ account: mp, message: sampleMessage('text', { fromUser: 'o_ext' }) });
    await redis.pexpire(keyspace.handoff(mp.appId, 'o_ext'), 5_000);
    expect((await post(mp, first)).body).toContain('transfer_customer_service');
    expect(await redis.pttl(keyspace.handoff(mp.appId, 'o_ext'))).toBeGreaterThan(55_000); // a new message renews
    await redis.pexpire(keyspace.handoff(mp.appId, 'o_ext'), 5_000);
    expect((await post(mp, redeliver(mp, first))).body).toContain('transfer_customer_service');
    expect(await redis.pttl(keyspace.handoff(mp.appId, 'o_ext'))).toBeLessThanOrEqual(5_000);
  });

  it("the order: a re-delivery after the user's entry was released does not queue it again", async () => {
    const first = buildPush({ account: mp, message: sampleMessage('text', { fromUser: 'o_order' }) });
    await post(mp, first);
    const order = keyspace.userOrder(mp.appId, 'o_order');
    const [entry] = await redis.lrange(order, 0, -1);
    expect(entry).toBeDefined();
    await conversations.settle(mp.appId, 'o_order', { release: entry }); // the worker finished the job

    await post(mp, redeliver(mp, first));
    expect(await redis.lrange(order, 0, -1)).toEqual([]);
    // The user's next message is not kept waiting behind it.
    const next = buildPush({ account: mp, message: sampleMessage('text', { fromUser: 'o_order', content: 'next' }) });
    await post(mp, next);
    expect(await redis.llen(order)).toBe(1);
  });

  it('the timeline: a re-delivery adds no entry', async () => {
    const first = buildPush({ account: mp, message: sampleMessage('text', { fromUser: 'o_tl' }) });
    await post(mp, first);
    const entry = (await redis.lindex(keyspace.userOrder(mp.appId, 'o_tl'), 0)) ?? '';
    await conversations.settle(mp.appId, 'o_tl', { release: entry });
    await post(mp, redeliver(mp, first));
    expect((await conversations.view(mp.appId, 'o_tl')).timeline).toHaveLength(1);
  });
});

describe('a push dated in the future', () => {
  it("one dated years ahead grants nothing, so it cannot hold the window's mark there and silence the user", async () => {
    const ahead = sampleMessage('text', { fromUser: 'o_future', createTime: 16725225600 }); // the year 2500
    expect((await post(mp, buildPush({ account: mp, message: ahead }))).statusCode).toBe(200);
    expect(await conversations.window(mp.appId, 'o_future')).toMatchObject({ open: false });
    const now = sampleMessage('text', { fromUser: 'o_future', content: 'a real message' });
    await post(mp, buildPush({ account: mp, message: now }));
    expect(await conversations.window(mp.appId, 'o_future')).toMatchObject({ open: true, left: 5 });
  });
});

describe('only the user actions WeChat documents open a window', () => {
  it.each([
    ['a device event (bind)', oa, { MsgType: 'device_event', Event: 'bind', DeviceType: 'gh_x', DeviceID: 'd1' }],
    ['an unknown MsgType', mp, { MsgType: 'hologram', MsgId: '77' }],
    [
      'a voice message on a Mini Program (not one of its message types)',
      mp,
      { MsgType: 'voice', MediaId: 'v1', Format: 'amr', MsgId: '78' },
    ],
    ['a VIEW menu event on an Official Account', oa, { MsgType: 'event', Event: 'VIEW', EventKey: 'https://x' }],
  ])('%s is stored but grants nothing', async (_, a, fields) => {
    const message = { ToUserName: 'gh_x', FromUserName: 'o_nogrant', CreateTime: String(nowSeconds()), ...fields };
    expect((await post(a, buildPush({ account: a, message }))).statusCode).toBe(200);
    expect(await jobCount()).toBe(1);
    expect(await conversations.window(a.appId, 'o_nogrant')).toMatchObject({ open: false, left: 0 });
  });

  it.each([
    ['a text on a Mini Program', mp, sampleMessage('text', { fromUser: 'o_grant' }), 5],
    ['a voice message on an Official Account', oa, sampleMessage('voice', { fromUser: 'o_grant' }), 5],
    ['entering the chat on a Mini Program', mp, sampleMessage('user_enter_tempsession', { fromUser: 'o_grant' }), 2],
  ])('%s grants its allowance', async (_, a, message, left) => {
    await post(a, buildPush({ account: a, message }));
    expect(await conversations.window(a.appId, 'o_grant')).toMatchObject({ open: true, left });
  });
});
