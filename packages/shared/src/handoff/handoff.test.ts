import { isolatedRedisUrl } from '@wx-kf/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Keyspace } from '../redis/keys.js';
import { type HandoffReason, Handoffs, usesHandoff } from './index.js';

const keyspace = Keyspace.SINGLE;

let redis: Redis;
const changes: string[] = [];
const handoffs = () =>
  new Handoffs({ redis, idleMs: 60_000, onChange: (change, _appId, reason) => changes.push(`${change}:${reason}`) });
const APP = 'wxhandoffunit0001';

beforeAll(async () => {
  redis = new Redis(await isolatedRedisUrl());
});
afterAll(() => redis.disconnect());

describe('handoff state', () => {
  it('opens, moves to another agent keeping its start, and closes; each counted by reason', async () => {
    const h = handoffs();
    changes.length = 0;
    const opened = await h.open(APP, 'o_user_a', { reason: 'kf_create_session', agent: 'a1@acc', at: 1000 });
    expect(opened).toMatchObject({ open: true, agent: 'a1@acc', reason: 'kf_create_session' });
    const moved = await h.open(APP, 'o_user_a', { reason: 'kf_switch_session', agent: 'a2@acc', at: 2000 });
    expect(moved).toMatchObject({ open: true, agent: 'a2@acc', since: opened?.since });
    expect(await h.isOpen(APP, 'o_user_a')).toBe(true);
    const closed = await h.close(APP, 'o_user_a', { reason: 'kf_close_session', at: 3000 });
    expect(closed?.agent).toBe('a2@acc');
    expect(await h.isOpen(APP, 'o_user_a')).toBe(false);
    expect(await h.close(APP, 'o_user_a', { reason: 'operator', force: true })).toBeUndefined();
    expect(changes).toEqual(['opened:kf_create_session', 'closed:kf_close_session']);
  });

  it('does not let an older, late event undo a newer one (events processed out of order)', async () => {
    const h = handoffs();
    await h.open(APP, 'o_user_b', { reason: 'kf_create_session', agent: 'a1@acc', at: 5000 });
    await h.close(APP, 'o_user_b', { reason: 'kf_close_session', at: 9000 });
    // The create of the same second as the close, and an older one, arrive late: the user stays with the bot.
    expect(await h.open(APP, 'o_user_b', { reason: 'kf_create_session', at: 9000 })).toBeUndefined();
    expect(await h.open(APP, 'o_user_b', { reason: 'kf_create_session', at: 4000 })).toBeUndefined();
    expect(await h.isOpen(APP, 'o_user_b')).toBe(false);
    // An operator acts now, whatever the events said.
    expect((await h.open(APP, 'o_user_b', { reason: 'operator', force: true }))?.open).toBe(true);
    // A close older than the open does not close it.
    await h.open(APP, 'o_user_c', { reason: 'kf_create_session', at: 20_000 });
    expect(await h.close(APP, 'o_user_c', { reason: 'kf_close_session', at: 10_000 })).toBeUndefined();
    expect(await h.isOpen(APP, 'o_user_c')).toBe(true);
  });

  it('an expired handoff is noticed once by sweep as an idle close', async () => {
    let now = 1_000_000;
    const h = new Handoffs({
      redis,
      idleMs: 60_000,
      now: () => now,
      onChange: (change, _appId, reason: HandoffReason) => changes.push(`${change}:${reason}`),
    });
    changes.length = 0;
    await h.open(APP, 'o_user_d', { reason: 'rule', force: true });
    const key = keyspace.handoff(APP, 'o_user_d');
    expect(await redis.pttl(key)).toBeGreaterThan(50_000);
    // Idle time passes (the key expires in Redis; our clock moves past the timeout).
    await redis.del(key);
    expect(await h.sweep(APP)).toBe(0); // not yet due by our clock
    now += 61_000;
    const other = new Handoffs({ redis, idleMs: 60_000, now: () => now });
    const [a, b] = await Promise.all([h.sweep(APP), other.sweep(APP)]);
    expect(a + b).toBe(1);
    expect(await redis.zcard(keyspace.handoffIndex(APP))).toBeLessThanOrEqual(2);
    expect(await h.get(APP, 'o_user_d')).toBeUndefined();
  });

  it('is kept by accounts that transfer, run a handler or are Official Accounts, unless told', () => {
    const mp = { type: 'miniprogram' as const };
    expect(usesHandoff(mp, { transferRules: false, handler: false })).toBe(false);
    expect(usesHandoff(mp, { transferRules: true, handler: false })).toBe(true);
    expect(usesHandoff(mp, { transferRules: false, handler: true })).toBe(true);
    expect(usesHandoff({ type: 'officialaccount' }, { transferRules: false, handler: false })).toBe(true);
    expect(usesHandoff({ ...mp, handoff: 'on' }, { transferRules: false, handler: false })).toBe(true);
    expect(usesHandoff({ type: 'officialaccount', handoff: 'off' }, { transferRules: true, handler: true })).toBe(
      false,
    );
  });
});
