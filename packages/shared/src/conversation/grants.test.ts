import { Conversations } from '@wx-kf/shared/conversation';
import { createRedis } from '@wx-kf/shared/redis';
import { isolatedRedisUrl } from '@wx-kf/testkit';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const APP = 'wxgranttest00001';
const TPL = 'TPL_shipped_0001';
let redis: Redis;
let conv: Conversations;
let n = 0;
const user = () => `o_grant_${++n}`;

/** A pop-up event as the parser stores it (XML: the entries under SubscribeMsgPopupEvent.List). */
const popup = (openid: string, ...choices: [string, string][]) => ({
  MsgType: 'event',
  Event: 'subscribe_msg_popup_event',
  FromUserName: openid,
  CreateTime: String(Math.floor(Date.now() / 1000) + ++n),
  SubscribeMsgPopupEvent: {
    List: choices.map(([TemplateId, SubscribeStatusString]) => ({
      TemplateId,
      SubscribeStatusString,
      PopupScene: '0',
    })),
  },
});

beforeAll(async () => {
  redis = createRedis(await isolatedRedisUrl(), 'client');
  conv = new Conversations(redis);
});
afterAll(() => redis.disconnect());

const store = (jobId: string, message: Record<string, unknown>) =>
  conv.ingest(APP, 'miniprogram', jobId, message, { receivedAt: Date.now() });
const grants = async (openid: string) => (await conv.view(APP, openid)).grants;

describe('subscribe-message grants', () => {
  it('each accept adds one; a push stored twice (or applied again by its job) adds once', async () => {
    const u = user();
    const first = popup(u, [TPL, 'accept'], ['TPL_other', 'acceptWithAudio']);
    await store(`${APP}-e1`, first);
    await store(`${APP}-e1`, first); // a re-delivery before the job was added
    // Two deliveries stored at the same time (two ingress replicas): both find no job yet.
    const second = popup(u, [TPL, 'accept']);
    await Promise.all([store(`${APP}-e2`, second), store(`${APP}-e2`, second)]);
    // The worker applies each job's changes again: nothing counts twice.
    await conv.turn(APP, 'miniprogram', `${APP}-e1`, first);
    expect(await grants(u)).toEqual({ [TPL]: 2, TPL_other: 1 });
  });

  it('a push whose job exists already changes nothing at the ingress', async () => {
    const u = user();
    await redis.hset(`{wx-kf}:inbound:${APP}-e9`, 'name', 'push');
    await store(`${APP}-e9`, popup(u, [TPL, 'accept']));
    expect(await grants(u)).toEqual({});
  });

  it('reject, ban and a change to reject clear a template; filter changes nothing', async () => {
    const u = user();
    await store(`${APP}-e10`, popup(u, [TPL, 'accept'], ['TPL_b', 'accept'], ['TPL_c', 'accept']));
    await store(`${APP}-e11`, popup(u, [TPL, 'reject'], ['TPL_b', 'filter'], ['TPL_c', 'ban']));
    expect(await grants(u)).toEqual({ TPL_b: 1 });
    // JSON puts a change event's entry in a top-level List (one entry: an array of one after parsing).
    const change = { MsgType: 'event', Event: 'subscribe_msg_change_event', FromUserName: u, CreateTime: '1' };
    await store(`${APP}-e12`, { ...change, List: [{ TemplateId: 'TPL_b', SubscribeStatusString: 'reject' }] });
    expect(await grants(u)).toEqual({});
  });

  it('a notification takes one grant once per job, gives it back on a refusal, and 43101 clears', async () => {
    const u = user();
    await store(`${APP}-e20`, popup(u, [TPL, 'accept']));
    await store(`${APP}-e21`, popup(u, [TPL, 'accept']));
    const g = conv.grants;
    expect(await g.take(APP, u, TPL, 'notify-1')).toBe('taken');
    expect(await g.take(APP, u, TPL, 'notify-1')).toBe('held'); // its retry
    expect(await grants(u)).toEqual({ [TPL]: 1 });
    await g.giveBack(APP, u, TPL, 'notify-1');
    await g.giveBack(APP, u, TPL, 'notify-1'); // only what it holds
    expect(await grants(u)).toEqual({ [TPL]: 2 });
    expect(await g.take(APP, u, TPL, 'notify-2')).toBe('taken');
    expect(await g.take(APP, u, TPL, 'notify-3')).toBe('taken');
    expect(await g.take(APP, u, TPL, 'notify-4')).toBe('none');
    // The user rejects while notify-3 waits: its grant is not given back.
    await store(`${APP}-e22`, popup(u, [TPL, 'reject']));
    await g.giveBack(APP, u, TPL, 'notify-3');
    expect(await grants(u)).toEqual({});
    await store(`${APP}-e23`, popup(u, [TPL, 'accept']));
    await g.clear(APP, u, TPL);
    expect(await grants(u)).toEqual({});
  });
});
