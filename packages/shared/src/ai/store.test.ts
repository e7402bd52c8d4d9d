// The AI reply source's Redis state: stored answers and the claim, the limits, the context the conversation
// scripts keep, and erasing a user. Real Redis.
import { isolatedRedisUrl } from '@wx-kf/testkit';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Conversations, forgetUser } from '../conversation/index.js';
import { Handoffs } from '../handoff/index.js';
import { INBOUND_QUEUE, openQueue } from '../queue/index.js';
import { createRedis, keyspaceOf } from '../redis/index.js';
import { AiAnswers, type StoredAnswer } from './answers.js';
import { readHistory } from './context.js';
import { AiLimits } from './limits.js';

const APP = 'wxaistore00001';
let redis: Redis;
let n = 0;
const user = () => `o_ai_${++n}`;
const text = (openid: string, Content: string, id = ++n) => ({
  MsgType: 'text',
  FromUserName: openid,
  CreateTime: String(Math.floor(Date.now() / 1000)),
  Content,
  MsgId: String(id),
});
const answer = (content: string, done = true): StoredAnswer => ({
  kind: 'answer',
  replies: [{ msgtype: 'text', text: { content } }],
  done,
});

beforeAll(async () => {
  redis = createRedis(await isolatedRedisUrl(), 'client');
});
afterAll(() => redis.disconnect());

describe('stored answers and the claim', () => {
  it('one worker claims a message; another waits; the stored answer is what a retry gets, never a new claim', async () => {
    const answers = new AiAnswers(redis, { leaseMs: 5000 });
    const u = user();
    expect(await answers.claim(APP, u, 'job1', 'w1')).toEqual({ kind: 'claimed' });
    expect(await answers.claim(APP, u, 'job1', 'w1')).toEqual({ kind: 'claimed' }); // renewed
    expect(await answers.claim(APP, u, 'job1', 'w2')).toMatchObject({ kind: 'busy' });
    expect(await answers.store(APP, u, 'job1', 'w2', answer('stolen'))).toBe(false);
    expect(await answers.store(APP, u, 'job1', 'w1', answer('part', false))).toBe(true);
    expect(await answers.store(APP, u, 'job1', 'w1', answer('whole'), true)).toBe(true);
    // The claim ended: any worker now gets the stored answer, and the model is not asked again.
    expect(await answers.claim(APP, u, 'job1', 'w3')).toEqual({ kind: 'stored', answer: answer('whole') });
    await answers.drop(APP, u, 'job1');
    expect(await answers.claim(APP, u, 'job1', 'w3')).toEqual({ kind: 'claimed' });
  });

  it("a crashed worker's claim lapses after its lease; what it stored is then sent as it is", async () => {
    const answers = new AiAnswers(redis, { leaseMs: 150 });
    const u = user();
    await answers.claim(APP, u, 'job2', 'dead');
    await answers.store(APP, u, 'job2', 'dead', answer('first half', false));
    expect(await answers.claim(APP, u, 'job2', 'w2')).toMatchObject({ kind: 'busy' });
    await new Promise((r) => setTimeout(r, 200));
    expect(await answers.claim(APP, u, 'job2', 'w2')).toEqual({ kind: 'stored', answer: answer('first half', false) });
  });
});

describe('limits', () => {
  it('never lets more than max calls hold a slot across clients; a lapsed holder frees its slot', async () => {
    const other = redis.duplicate();
    try {
      const a = new AiLimits(redis, { leaseMs: 200 });
      const b = new AiLimits(other, { leaseMs: 200 });
      expect(await a.tryAcquire(APP, 'h1', 2)).toBe(true);
      expect(await b.tryAcquire(APP, 'h2', 2)).toBe(true);
      expect(await a.tryAcquire(APP, 'h3', 2)).toBe(false);
      expect(await a.tryAcquire(APP, 'h1', 2, true)).toBe(true); // renewing a held slot
      await new Promise((r) => setTimeout(r, 250)); // both lapse (crashed holders)
      expect(await b.tryAcquire(APP, 'h2', 2, true)).toBe(false);
      const slot = await a.acquire(APP, 'h3', 2, 1000);
      expect(slot).toBeDefined();
      const waiting = b.acquire(APP, 'h4', 1, 2000); // waits for h3
      await new Promise((r) => setTimeout(r, 100));
      await slot?.release();
      const second = await waiting;
      expect(second).toBeDefined();
      expect(await a.acquire(APP, 'h5', 1, 100)).toBeUndefined(); // the wait ran out
      await second?.release();
    } finally {
      other.disconnect();
    }
  });

  it('counts calls per user per hour, and tokens per account per UTC day', async () => {
    const limits = new AiLimits(redis, { now: () => Date.parse('2026-12-04T23:59:00Z') });
    const u = user();
    expect(await limits.withinUserRate(APP, u, 2)).toBe(true);
    expect(await limits.withinUserRate(APP, u, 2)).toBe(true);
    expect(await limits.withinUserRate(APP, u, 2)).toBe(false);
    expect(await limits.withinUserRate(APP, u, 0)).toBe(true);
    await limits.spend(APP, 120);
    await limits.spend(APP, 30);
    expect(await limits.tokensToday(APP)).toBe(150);
    expect(await redis.get(keyspaceOf(redis).aiTokens(APP, '2026-12-04'))).toBe('150');
  });
});

describe('the AI context', () => {
  it("keeps the user's texts when their turn comes and what was sent to them, once each, for accounts that use it", async () => {
    const conv = new Conversations(redis, {
      context: { entries: 5, maxAgeMs: 60_000, accounts: new Set([APP]) },
    });
    const u = user();
    const m1 = text(u, 'first question');
    await conv.turn(APP, 'miniprogram', 'j1', m1);
    await conv.turn(APP, 'miniprogram', 'j1', m1); // a retry: kept once
    const reply = { msgtype: 'text', text: { content: 'first answer' } };
    await conv.settle(APP, u, { sent: { item: reply, jobId: 'j1' } });
    await conv.turn(APP, 'miniprogram', 'j2', { ...text(u, ''), MsgType: 'voice', Recognition: '第二个问题' });
    await conv.turn(APP, 'miniprogram', 'j3', { ...text(u, ''), MsgType: 'event', Event: 'user_enter_tempsession' });
    await conv.turn(APP, 'miniprogram', 'j4', text(u, 'third'));
    const raw = await conv.contextEntries(APP, u);
    expect(readHistory(raw, { entries: 10, chars: 10_000, oldest: 0, jobId: 'j4' })).toEqual([
      { role: 'user', content: 'first question' },
      { role: 'assistant', content: 'first answer' },
      { role: 'user', content: '第二个问题' },
    ]);
    // Bounded by entries and characters, always starting with the user.
    expect(readHistory(raw, { entries: 2, chars: 10_000, oldest: 0 })).toEqual([
      { role: 'user', content: '第二个问题\n\nthird' },
    ]);
    expect(readHistory(raw, { entries: 10, chars: 12, oldest: 0 })).toEqual([
      { role: 'user', content: '第二个问题\n\nthird' },
    ]);
    // Another account keeps none.
    const v = user();
    await conv.turn('wxother', 'miniprogram', 'k1', text(v, 'hello'));
    expect(await redis.exists(keyspaceOf(redis).aiContext('wxother', v))).toBe(0);
  });
});

describe('forgetting a user', () => {
  it('erases every key kept about the user and says what it erased', async () => {
    const keys = keyspaceOf(redis);
    const conv = new Conversations(redis, { context: { entries: 5, maxAgeMs: 60_000, accounts: new Set([APP]) } });
    const handoffs = new Handoffs({ redis, idleMs: 60_000 });
    const answers = new AiAnswers(redis);
    const limits = new AiLimits(redis);
    const u = user();
    const m = text(u, 'please forget me');
    await conv.ingest(APP, 'miniprogram', 'f1', m, { receivedAt: Date.now() });
    await conv.turn(APP, 'miniprogram', 'f1', m);
    await answers.claim(APP, u, 'f1', 'w');
    await answers.store(APP, u, 'f1', 'w', answer('x'));
    await limits.withinUserRate(APP, u, 10);
    await handoffs.open(APP, u, { reason: 'operator', force: true });
    const inbound = openQueue(INBOUND_QUEUE, redis);
    await inbound.add('push', { appId: APP, message: m } as never, { jobId: 'f1' });
    const before = (await redis.keys(`*${u}*`)).sort();
    expect(before).toHaveLength(8);

    const erasure = await forgetUser(redis, APP, u);
    expect(erasure.erased).toEqual({
      window: 1,
      order: 1,
      timelineEntries: 1,
      contextEntries: 1,
      handoff: 1,
      storedAnswers: 1,
      modelRate: 1,
      modelClaim: 1,
      jobs: 1,
      grants: 0, // this user accepted no subscribe template (test/forget.test.ts erases some)
    });
    expect(await inbound.getJob('f1')).toBeUndefined();
    await inbound.close();
    expect(await redis.keys(`*${u}*`)).toEqual([]);
    expect(await redis.zscore(keys.handoffIndex(APP), u)).toBeNull();
    expect(await redis.zscore(keys.openWindows(APP, 0), u)).toBeNull();
    expect((await forgetUser(redis, APP, u)).erased.window).toBe(0);
  });
});
