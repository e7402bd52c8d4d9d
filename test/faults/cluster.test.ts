import { TokenManager, WeChatHttp } from '@wx-kf/shared/api';
import { createLogger } from '@wx-kf/shared/log';
import { INBOUND_QUEUE, openQueue } from '@wx-kf/shared/queue';
import { createRedis, Keyspace, keySlot, type RedisClient, type RedisTarget } from '@wx-kf/shared/redis';
import { LocalCluster, redisCli, ServiceProcess } from '@wx-kf/testkit';
import { deliverPush, Simulator } from '@wx-kf/wechat-sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCOUNTS, failoverRun, HOT, push, QUIET, replied, startServices, until } from './harness.js';

// One local Redis Cluster (3 primaries, a replica each) for the file: the whole path, the shard spread,
// pub/sub on ioredis' Cluster, then a primary killed under load (replicated durability, then the default).
const SHARDS = 16;
const layout = new Keyspace(SHARDS);
const sim = new Simulator({
  accounts: ACCOUNTS.map(({ appId, appSecret }) => ({ appId, appSecret, type: 'miniprogram' })),
});
let cluster: LocalCluster;
let target: RedisTarget;
let client: RedisClient;
const redisEnv = (extra: NodeJS.ProcessEnv = {}) => ({ REDIS_CLUSTER_NODES: cluster.seeds, ...extra });

beforeAll(async () => {
  await sim.listen();
  cluster = await LocalCluster.start({ primaries: 3, replicas: 1 });
  target = {
    kind: 'cluster',
    nodes: cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
    shards: SHARDS,
    durability: 'local',
  };
  client = createRedis(target, 'client'); // its layout: 16 shards, as the services use
}, 60_000);
afterAll(async () => {
  client?.disconnect();
  await sim.close();
  await cluster?.dispose();
});

describe('on a Redis Cluster (3 primaries, 16 shards)', () => {
  it('the whole path: pushes through the ingress, replies from two workers, one token per account, CLI stats', async () => {
    sim.reset();
    const services = await startServices(sim, redisEnv());
    try {
      const users = [
        ...Array.from({ length: 200 }, (_, i) => [HOT, `o_hot_${i}`] as const),
        ...QUIET.flatMap((a) => Array.from({ length: 25 }, (_, i) => [a, `o_${a.appId}_${i}`] as const)),
      ];
      // 20 at a time, redelivered like WeChat does on a refusal (the suite shares a small machine).
      const answers: Awaited<ReturnType<typeof deliverPush>>[] = [];
      for (let i = 0; i < users.length; i += 20) {
        const batch = users.slice(i, i + 20);
        answers.push(
          ...(await Promise.all(
            batch.map(([a, u]) =>
              deliverPush(services.url(a.appId), push(a, u), { maxDeliveries: 5, timeoutMs: 4000 }),
            ),
          )),
        );
      }
      expect(answers.filter((d) => d.at(-1)?.status === 200)).toHaveLength(users.length);
      await until('every user replied to', () => users.every(([, u]) => replied(sim).has(u)));
      for (const a of ACCOUNTS) expect(sim.state.tokenRequestCount(a.appId)).toBe(1);

      // Every shard got jobs, the hot account's among them, and every primary holds some of them.
      const byShard = await Promise.all(
        Array.from({ length: SHARDS }, async (_, shard) => {
          const queue = openQueue(INBOUND_QUEUE, client, shard);
          const jobs = await queue.getJobs(['completed']);
          await queue.close();
          return jobs.map((j) => j.data.appId);
        }),
      );
      expect(byShard.every((apps) => apps.length > 0)).toBe(true);
      expect(byShard.every((apps) => apps.includes(HOT.appId))).toBe(true);
      const primaries = new Set(byShard.map((_, s) => cluster.primaryOf(keySlot(layout.shardTag(s)))?.port));
      expect(primaries.size).toBe(3);

      const stats = ServiceProcess.start('queues', redisEnv(), ['stats', '--json']);
      expect(await stats.exited).toBe(0);
      const printed = JSON.parse(stats.output.join('\n'));
      expect(printed.queues.inbound).toMatchObject({ waiting: 0, active: 0, completed: users.length, failed: 0 });
    } finally {
      await services.stop();
    }
  }, 60_000);

  it('token notices (pub/sub) reach every process through ioredis Cluster', async () => {
    sim.reset();
    const http = new WeChatHttp({ baseUrl: sim.url });
    const logger = createLogger('cluster-test', { level: 'silent' });
    const options = { http, accounts: [HOT], source: 'classic' as const, logger, localMs: 60_000 };
    const [a, b] = [createRedis(target, 'client'), createRedis(target, 'client')];
    const [ta, tb] = [new TokenManager({ ...options, redis: a }), new TokenManager({ ...options, redis: b })];
    try {
      const first = await ta.getToken(HOT.appId);
      await until('A keeps a copy', async () => (await ta.getToken(HOT.appId)) === first);
      const second = await tb.replace(HOT.appId, first);
      expect(second).not.toBe(first);
      // A's copy would last 60 s; only B's notice over the cluster's pub/sub drops it.
      await until('A sees the new token', async () => (await ta.getToken(HOT.appId)) === second, 5000);
    } finally {
      ta.close();
      tb.close();
      a.disconnect();
      b.disconnect();
      await http.close();
    }
  });

  for (const durability of ['replicated', 'local'] as const) {
    it(`a primary killed under load (${durability}): 503 while it is down, recovery by itself, ${durability === 'replicated' ? 'no success lost' : 'losses counted'}`, async () => {
      sim.reset();
      const services = await startServices(sim, redisEnv({ REDIS_DURABILITY: durability }));
      const victim = cluster.primaryOf(keySlot(layout.shardTag(0)));
      if (!victim) throw new Error('no primary for shard 0');
      const owned = new Set(
        Array.from({ length: SHARDS }, (_, s) => s).filter(
          (s) => cluster.primaryOf(keySlot(layout.shardTag(s))) === victim,
        ),
      );
      try {
        const result = await failoverRun({
          label: `cluster ${durability}`,
          url: services.url(HOT.appId),
          sim,
          kill: () => victim.stop('SIGKILL'),
          freezeReplica: () => {
            for (const r of cluster.replicasOf(victim)) r.freeze(3);
            // Cut the link too: what the primary writes from now on is only in the primary (not even in
            // the frozen replica's socket buffer).
            redisCli(victim.port, 'client', 'kill', 'type', 'replica');
          },
          // Back as a replica of its successor (replicated durability needs one for the shards it held), but
          // only once the successor took over: a primary restarted empty before that would wipe its slots.
          afterOutage: async () => {
            await until('a replica took over', () => {
              const now = cluster.primaryOf(keySlot(layout.shardTag(0)));
              return now !== undefined && now !== victim;
            });
            await victim.resume();
          },
          affected: (user) => owned.has(layout.userShard(HOT.appId, user)),
          durability,
          explain: async (lost) => {
            const found = new Map<string, string>();
            for (let s = 0; s < SHARDS; s++) {
              const q = openQueue(INBOUND_QUEUE, client, s);
              for (const j of await q.getJobs(['waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized'])) {
                found.set(String(j.data.message?.FromUserName), `${await j.getState()} ${j.failedReason ?? ''}`);
              }
              await q.close();
            }
            console.log('lost users:', lost.map((u) => `${u}: ${found.get(u) ?? 'not in redis'}`).join('; '));
          },
        });
        expect(result.refused).toBeGreaterThan(0);
        if (durability === 'replicated') expect(result.lost).toBe(0);
        await until('cluster healthy again', () => cluster.healthy(), 30_000);
      } finally {
        await services.stop();
      }
    }, 120_000);
  }
});
