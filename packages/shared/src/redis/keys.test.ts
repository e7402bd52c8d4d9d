import { describe, expect, it } from 'vitest';
import { createRedis, keySlot, keyspaceOf } from './index.js';
import { Keyspace } from './keys.js';

describe('key layout', () => {
  it('one shard: exactly the keys of earlier releases, so existing data stays readable', () => {
    const keys = Keyspace.SINGLE;
    expect(keys.queuePrefix(0)).toBe('{wx-kf}');
    expect(keys.userTag('wxa', 'o_1')).toBe('{wx-kf}');
    expect(keys.token('wxa')).toBe('{wx-kf}:token:wxa');
    expect(keys.paused('wxa')).toBe('{wx-kf}:paused:wxa');
    expect(keys.inboundDedup(0, 'wxa-m1')).toBe('{wx-kf}:inbound:de:wxa-m1');
  });

  it('16 shards: one hot account spreads over every shard, and the shards over the 3 primaries of a cluster', () => {
    const keys = new Keyspace(16);
    const shards = new Set(Array.from({ length: 500 }, (_, i) => keys.userShard('wxhot', `o_user_${i}`)));
    expect(shards.size).toBe(16);
    // A 3-primary cluster splits the slots 0–5460, 5461–10922, 10923–16383.
    const primaries = new Set([...shards].map((s) => Math.min(2, Math.floor(keySlot(keys.shardTag(s)) / 5461.34))));
    expect(primaries.size).toBe(3);
    // A user's keys and an account's keys each stay in one slot.
    expect(keys.userTag('wxhot', 'o_user_1')).toBe(keys.shardTag(keys.userShard('wxhot', 'o_user_1')));
    expect(keySlot(keys.token('wxa'))).toBe(keySlot(keys.tokenLock('wxa')));
    expect(keySlot(keys.token('wxa'))).toBe(keySlot(keys.accountTag('wxa')));
  });

  it('two layouts live in one process: each connection carries the one its configuration gave', () => {
    const single = createRedis('redis://127.0.0.1:1', 'client');
    const sharded = createRedis(
      { kind: 'single', url: 'redis://127.0.0.1:1', shards: 4, durability: 'local' },
      'client',
    );
    try {
      expect(keyspaceOf(sharded).shards).toBe(4);
      expect(keyspaceOf(single).shards).toBe(1); // made after: not changed by the other
      expect(keyspaceOf(single).token('wxa')).toBe('{wx-kf}:token:wxa');
      expect(keyspaceOf(sharded).token('wxa')).toMatch(/^\{wx-kf:[0-3]\}:token:wxa$/);
    } finally {
      single.disconnect();
      sharded.disconnect();
    }
  });

  it('refuses a shard count out of range', () => {
    expect(() => new Keyspace(0)).toThrow(RangeError);
    expect(() => new Keyspace(1025)).toThrow(RangeError);
  });

  it('computes the slot Redis Cluster does (CLUSTER KEYSLOT)', () => {
    // Values from redis-cli CLUSTER KEYSLOT on Redis 7.0.
    expect(keySlot('{wx-kf}')).toBe(8899);
    expect(keySlot('{wx-kf:0}:inbound:id')).toBe(3646);
    expect(keySlot('123456789')).toBe(12739);
  });
});
