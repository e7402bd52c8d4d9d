import { Conversations, WINDOW_GRANTS, windowGrant } from '@wx-kf/shared/conversation';
import { createRedis, Keyspace } from '@wx-kf/shared/redis';
import { isolatedRedisUrl } from '@wx-kf/testkit';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const keyspace = Keyspace.SINGLE;

const APP = 'wxledgertest0001';
let redis: Redis;
let clock = Math.floor(Date.now() / 1000) * 1000; // whole seconds, like CreateTime
let conv: Conversations;
let n = 0;
const user = () => `o_ledger_${++n}`;
const text = (openid: string, at = clock) => ({
  MsgType: 'text',
  FromUserName: openid,
  CreateTime: String(Math.floor(at / 1000)),
  Content: 'hello there',
  MsgId: String(1e18 + ++n),
});

beforeAll(async () => {
  redis = createRedis(await isolatedRedisUrl(), 'client');
  conv = new Conversations(redis, { now: () => clock });
});
afterAll(() => redis.disconnect());

async function takeAll(openid: string, max = 10): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < max; i++) {
    const t = await conv.take(APP, openid);
    out.push(t.ok ? `ok ${t.left}` : t.message);
    if (!t.ok) break;
  }
  return out;
}

describe('window rules', () => {
  it('reads the triggers of each account kind', () => {
    expect(windowGrant('miniprogram', { MsgType: 'text' })).toEqual(WINDOW_GRANTS.message);
    expect(windowGrant('miniprogram', { MsgType: 'event', Event: 'user_enter_tempsession' })?.count).toBe(2);
    expect(windowGrant('miniprogram', { MsgType: 'event', Event: 'CLICK' })).toBeUndefined();
    expect(windowGrant('officialaccount', { MsgType: 'event', Event: 'CLICK' })?.trigger).toBe('click');
    expect(windowGrant('officialaccount', { MsgType: 'event', Event: 'scancode_push' })?.trigger).toBe('click');
    expect(windowGrant('officialaccount', { MsgType: 'event', Event: 'VIEW' })).toBeUndefined();
    expect(windowGrant('officialaccount', { MsgType: 'event', Event: 'subscribe' })?.count).toBe(3);
    expect(windowGrant('officialaccount', { MsgType: 'event', Event: 'SCAN' })?.ms).toBe(60_000);
    expect(windowGrant('officialaccount', { MsgType: 'event', Event: 'unsubscribe' })).toBeUndefined();
  });
});

describe('the ledger', () => {
  it('a message allows five sends in 48 h, then refuses until the user writes again', async () => {
    const u = user();
    await conv.ingest(APP, 'miniprogram', `${APP}-m1`, text(u), { receivedAt: clock });
    expect(await takeAll(u)).toEqual([
      'ok 4',
      'ok 3',
      'ok 2',
      'ok 1',
      'ok 0',
      'no sends left until the user writes again',
    ]);
    clock += 1000;
    await conv.ingest(APP, 'miniprogram', `${APP}-m2`, text(u), { receivedAt: clock });
    expect((await conv.window(APP, u)).left).toBe(5);
  });

  it('entering the chat allows two within a minute; a stale window is refused with its end', async () => {
    const u = user();
    const enter = {
      MsgType: 'event',
      Event: 'user_enter_tempsession',
      FromUserName: u,
      CreateTime: String(clock / 1000),
    };
    await conv.ingest(APP, 'miniprogram', `${APP}-e1`, enter, { receivedAt: clock });
    expect((await conv.window(APP, u)).trigger).toBe('enter_session');
    expect((await conv.take(APP, u)).ok).toBe(true);
    clock += 61_000;
    const stale = await conv.take(APP, u);
    expect(stale).toMatchObject({ ok: false, reason: 'closed' });
    expect(stale.ok || stale.message).toBe(`window closed at ${new Date(clock - 1000).toISOString()}`);
  });

  it('a second action resets rather than adds; a shorter one never shortens a longer window', async () => {
    const u = user();
    await conv.ingest(APP, 'miniprogram', `${APP}-m3`, text(u), { receivedAt: clock });
    for (let i = 0; i < 4; i++) await conv.take(APP, u);
    clock += 1000;
    const enter = {
      MsgType: 'event',
      Event: 'user_enter_tempsession',
      FromUserName: u,
      CreateTime: String(clock / 1000),
    };
    await conv.ingest(APP, 'miniprogram', `${APP}-e2`, enter, { receivedAt: clock });
    const w = await conv.window(APP, u);
    expect(w).toMatchObject({ open: true, left: 2, trigger: 'message' });
    expect(Date.parse(w.until ?? '')).toBe(clock - 1000 + 48 * 3600_000);
    // The same push again (a re-delivery, or the worker applying the job's grant) changes nothing.
    await conv.take(APP, u);
    await conv.ingest(APP, 'miniprogram', `${APP}-e2`, enter, { receivedAt: clock });
    expect((await conv.window(APP, u)).left).toBe(1);
  });

  it('45047 empties the window and 45015 closes it; a refund gives a send back', async () => {
    const u = user();
    await conv.ingest(APP, 'miniprogram', `${APP}-m4`, text(u), { receivedAt: clock });
    const t = await conv.take(APP, u);
    if (!t.ok) throw new Error('expected a send');
    await conv.settle(APP, u, { effect: 'refund', taken: t });
    expect((await conv.window(APP, u)).left).toBe(5);
    await conv.settle(APP, u, { effect: 'exhausted' });
    expect(await conv.take(APP, u)).toMatchObject({ ok: false, reason: 'exhausted' });
    await conv.settle(APP, u, { effect: 'closed' });
    expect(await conv.take(APP, u)).toMatchObject({ ok: false, reason: 'closed' });
    expect(await redis.zscore(keyspace.openWindows(APP, 0), u)).toBeNull();
  });

  it('a refund applies only to the grant the send was taken from', async () => {
    // OA: a message opens 5 in 48 h. Take four (one left), then the fifth; a click a second later resets the
    // count to 3 (the larger of what is left and its own) and keeps the longer window. Giving the fifth back to
    // that count would say 4 while WeChat allows 3.
    const u = user();
    await conv.ingest(APP, 'officialaccount', `${APP}-m5`, text(u), { receivedAt: clock });
    for (let i = 0; i < 4; i++) await conv.take(APP, u);
    const t = await conv.take(APP, u);
    if (!t.ok) throw new Error('expected a send');
    const click = { MsgType: 'event', Event: 'CLICK', FromUserName: u, CreateTime: String(clock / 1000 + 1) };
    await conv.ingest(APP, 'officialaccount', `${APP}-c5`, click, { receivedAt: clock + 1000 });
    expect((await conv.window(APP, u)).left).toBe(3);
    await conv.settle(APP, u, { effect: 'refund', taken: t });
    expect((await conv.window(APP, u)).left).toBe(3);
  });

  it('the window key expires with the window', async () => {
    const u = user();
    const now = Date.now();
    const live = new Conversations(redis);
    await live.ingest(
      APP,
      'miniprogram',
      `${APP}-e9`,
      {
        MsgType: 'event',
        Event: 'user_enter_tempsession',
        FromUserName: u,
        CreateTime: String(Math.floor(now / 1000)),
      },
      { receivedAt: now },
    );
    const ttl = await redis.pttl(keyspace.sendWindow(APP, u));
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('orders a user’s jobs by arrival; a settled job releases the next', async () => {
    const u = user();
    for (const id of ['j1', 'j2', 'j3']) await conv.ingest(APP, 'miniprogram', id, text(u), { receivedAt: clock });
    await conv.ingest(APP, 'miniprogram', 'j2', text(u), { receivedAt: clock }); // re-delivery: not queued twice
    const turn = (id: string) => conv.turn(APP, 'miniprogram', id, text(u));
    expect(await turn('j2')).toEqual({ go: false, head: 'j1' });
    expect(await turn('j1')).toEqual({ go: true });
    expect(await turn('elsewhere')).toEqual({ go: true });
    expect(await conv.settle(APP, u, { release: 'j1' })).toBe('j2');
    expect(await turn('j2')).toEqual({ go: true });
    expect(await conv.dropHead(APP, u, 'j2')).toBe('j3');
  });

  it('a turn can take the first send in the same trip; a job that must wait takes nothing', async () => {
    const u = user();
    for (const id of ['k1', 'k2']) await conv.ingest(APP, 'miniprogram', id, text(u), { receivedAt: clock });
    const turn = (id: string) => conv.turn(APP, 'miniprogram', id, text(u), { take: true });
    expect(await turn('k2')).toEqual({ go: false, head: 'k1' });
    expect((await conv.window(APP, u)).left).toBe(5);
    expect(await turn('k1')).toMatchObject({ go: true, take: { ok: true, left: 4 } });
    await conv.settle(APP, u, { release: 'k1' });
    for (let i = 0; i < 4; i++) await conv.take(APP, u);
    expect(await turn('k2')).toMatchObject({
      go: true,
      take: { ok: false, reason: 'exhausted', message: 'no sends left until the user writes again' },
    });
  });

  it('keeps a capped timeline, newest last, and none when it is off', async () => {
    const small = new Conversations(redis, { now: () => clock, timeline: { entries: 3, maxAgeMs: 60_000 } });
    const u = user();
    for (let i = 1; i <= 4; i++)
      await small.ingest(
        APP,
        'miniprogram',
        `t${i}`,
        { ...text(u), Content: `message number ${i}` },
        { receivedAt: clock },
      );
    await small.ingest(APP, 'miniprogram', 't4', { ...text(u), Content: 'message number 4' }, { receivedAt: clock });
    await small.settle(APP, u, { entry: { kind: 'text', summary: 'a reply', jobId: 't4', result: 'sent' } });
    const { timeline } = await small.view(APP, u);
    expect(timeline.map((e) => `${e.direction} ${e.summary} ${e.result}`)).toEqual([
      'in message number 3 received',
      'in message number 4 received',
      'out a reply sent',
    ]);
    clock += 61_000;
    expect((await small.view(APP, u)).timeline).toEqual([]);
    const off = new Conversations(redis, { now: () => clock, timeline: { entries: 0, maxAgeMs: 60_000 } });
    const v = user();
    await off.ingest(APP, 'miniprogram', 'off1', text(v), { receivedAt: clock });
    expect(await redis.exists(keyspace.timeline(APP, v))).toBe(0);
    expect((await off.window(APP, v)).left).toBe(5);
  });
});
