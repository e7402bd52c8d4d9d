import { LocalSentinel, redisCli } from '@wx-kf/testkit';
import { Simulator } from '@wx-kf/wechat-sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCOUNTS, failoverRun, HOT, startServices, until } from './harness.js';

// One Sentinel set (a primary, a replica, three sentinels) for the file; the primary is killed under a steady
// push load, first with replicated durability, then with the default.
const sim = new Simulator({
  accounts: ACCOUNTS.map(({ appId, appSecret }) => ({ appId, appSecret, type: 'miniprogram' })),
});
let set: LocalSentinel;

beforeAll(async () => {
  await sim.listen();
  set = await LocalSentinel.start();
}, 60_000);
afterAll(async () => {
  await sim.close();
  await set?.dispose();
});

describe('on Sentinel (a primary, a replica, three sentinels)', () => {
  for (const durability of ['replicated', 'local'] as const) {
    it(`the primary killed under load (${durability}): 503 until the replica is promoted, then recovery by itself`, async () => {
      sim.reset();
      const victim = set.primary();
      if (!victim) throw new Error('the sentinels name no primary');
      const services = await startServices(sim, {
        REDIS_SENTINELS: set.addresses,
        REDIS_SENTINEL_NAME: set.name,
        REDIS_DURABILITY: durability,
      });
      try {
        const result = await failoverRun({
          label: `sentinel ${durability}`,
          url: services.url(HOT.appId),
          sim,
          kill: () => victim.stop('SIGKILL'),
          freezeReplica: () => {
            for (const r of set.servers.filter((x) => x !== victim)) r.freeze(3);
            // Cut the link too: what the primary writes from now on is only in the primary (not even in
            // the frozen replica's socket buffer).
            redisCli(victim.port, 'client', 'kill', 'type', 'replica');
          },
          // Back as the new primary's replica once the sentinels promoted the other (restarted earlier, empty,
          // it would be primary again and lose everything): replicated durability needs a replica to confirm.
          afterOutage: async () => {
            await until('the sentinels promoted the replica', () => {
              const now = set.primary();
              return now !== undefined && now !== victim;
            });
            await victim.resume();
          },
          affected: () => true,
          durability,
        });
        expect(result.refused).toBeGreaterThan(0);
        if (durability === 'replicated') expect(result.lost).toBe(0);
        await until(
          'the old primary replicates the new one',
          () => set.primary() !== undefined && set.synced(),
          30_000,
        );
      } finally {
        await services.stop();
      }
    }, 120_000);
  }
});
