import { afterEach, describe, expect, it } from 'vitest';
import { keySlot } from './index.js';
import { accountTag, queuePrefix, redisKeys, setShardCount, shardTag, userShard, userTag } from './keys.js';

afterEach(() => setShardCount(1));

describe('key layout', () => {
  it('one shard: exactly the keys of earlier releases, so existing data stays readable', () => {
    expect(queuePrefix(0)).toBe('{wx-kf}');
    expect(userTag('wxa', 'o_1')).toBe('{wx-kf}');
    expect(redisKeys.token('wxa')).toBe('{wx-kf}:token:wxa');
    expect(redisKeys.paused('wxa')).toBe('{wx-kf}:paused:wxa');
    expect(redisKeys.inboundDedup(0, 'wxa-m1')).toBe('{wx-kf}:inbound:de:wxa-m1');
  });

  it('16 shards: one hot account spreads over every shard, and the shards over the 3 primaries of a cluster', () => {
    setShardCount(16);
    const shards = new Set(Array.from({ length: 500 }, (_, i) => userShard('wxhot', `o_user_${i}`)));
    expect(shards.size).toBe(16);
    // A 3-primary cluster splits the slots 0–5460, 5461–10922, 10923–16383.
    const primaries = new Set([...shards].map((s) => Math.min(2, Math.floor(keySlot(shardTag(s)) / 5461.34))));
    expect(primaries.size).toBe(3);
    // A user's keys and an account's keys each stay in one slot.
    expect(userTag('wxhot', 'o_user_1')).toBe(shardTag(userShard('wxhot', 'o_user_1')));
    expect(keySlot(redisKeys.token('wxa'))).toBe(keySlot(redisKeys.tokenLock('wxa')));
    expect(keySlot(redisKeys.token('wxa'))).toBe(keySlot(accountTag('wxa')));
  });

  it('computes the slot Redis Cluster does (CLUSTER KEYSLOT)', () => {
    // Values from redis-cli CLUSTER KEYSLOT on Redis 7.0.
    expect(keySlot('{wx-kf}')).toBe(8899);
    expect(keySlot('{wx-kf:0}:inbound:id')).toBe(3646);
    expect(keySlot('123456789')).toBe(12739);
  });
});
