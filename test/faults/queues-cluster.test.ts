import { INBOUND_QUEUE, OUTBOUND_QUEUE } from '@wx-kf/shared/queue';
import { createRedis, Keyspace, type RedisClient, type RedisTarget } from '@wx-kf/shared/redis';
import { LocalCluster, ServiceProcess } from '@wx-kf/testkit';
import { UnrecoverableError, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queues } from '../../apps/admin/src/queues.js';

// The queue CLI on a local 3-node Redis Cluster (16 shards), each command a fresh process as an operator runs it:
// it shows the system, not its shards.
const SHARDS = 16;
const keys = new Keyspace(SHARDS);
const OPERATOR = 'wxpausedoperator1';
const QUOTA = 'wxpausedquota0001';
let cluster: LocalCluster;
let target: RedisTarget;
let client: RedisClient;
let queues: Queues;
/** The failed jobs made below, oldest first: [id, shard, queue]. */
const failed: [string, number, string][] = [];

async function cli(...args: string[]): Promise<{ code: number | null; out: string }> {
  const p = ServiceProcess.start('queues', { REDIS_CLUSTER_NODES: cluster.seeds }, args);
  const code = await p.exited;
  return { code, out: p.output.join('\n') };
}

/** A job added to one shard's queue, then taken by a real (manual) worker of that shard and failed for good. */
async function failOne(name: typeof INBOUND_QUEUE | typeof OUTBOUND_QUEUE, shard: number, id: string) {
  const queue = name === INBOUND_QUEUE ? queues.inbounds[shard] : queues.outbounds[shard];
  await queue?.add('job', { appId: 'wxclustercli00001', touser: `o_${id}` }, { jobId: id });
  const worker = new Worker(name, null, { connection: createRedis(target, 'worker'), prefix: keys.queuePrefix(shard) });
  try {
    const job = await worker.getNextJob('token');
    await job?.moveToFailed(new UnrecoverableError(`45015 failed ${id}`), 'token');
  } finally {
    await worker.close();
  }
  failed.push([id, shard, name]);
  await new Promise((r) => setTimeout(r, 5)); // distinct finish times: a known newest-first order
}

beforeAll(async () => {
  cluster = await LocalCluster.start({ primaries: 3 });
  target = {
    kind: 'cluster',
    nodes: [{ host: '127.0.0.1', port: cluster.nodes[0]?.port ?? 0 }],
    shards: SHARDS,
    durability: 'local',
  };
  client = createRedis(target, 'client');
  queues = new Queues(client);
  // Five failed jobs on five shards (both queues), and two paused accounts: one by an operator, one by a 45009.
  for (const [i, shard] of [1, 5, 9, 12, 15].entries()) {
    await failOne(i % 2 ? OUTBOUND_QUEUE : INBOUND_QUEUE, shard, `cluster-failed-${i}`);
  }
  await client.set(keys.paused(OPERATOR), 'paused by an operator');
  await client.set(keys.paused(QUOTA), '45009 reach max api daily quota limit', 'PX', 600_000);
}, 60_000);
afterAll(async () => {
  await queues?.close();
  client?.disconnect();
  await cluster?.dispose();
});

describe('pnpm queues on a Redis Cluster (3 primaries, 16 shards)', () => {
  it('paused lists every paused account in a fresh process, as stats does', async () => {
    const [json, table, stats] = await Promise.all([cli('paused', '--json'), cli('paused'), cli('stats', '--json')]);
    expect(JSON.parse(json.out).map((p: { appId: string; reason: string }) => [p.appId, p.reason])).toEqual([
      [OPERATOR, 'operator'],
      [QUOTA, 'quota'],
    ]);
    expect(table.out).toContain(OPERATOR);
    expect(table.out).toContain(QUOTA);
    const accounts = JSON.parse(stats.out).accounts;
    expect(Object.keys(accounts).sort()).toEqual([OPERATOR, QUOTA]);
    expect(JSON.parse(stats.out).queues.inbound.failed + JSON.parse(stats.out).queues.outbound.failed).toBe(5);
  }, 30_000);

  it('list --limit applies to the whole system, newest first; --shard shows one shard', async () => {
    const [two, all, shard] = await Promise.all([
      cli('list', 'failed', '--limit', '2', '--json'),
      cli('list', 'failed', '--json'),
      cli('list', 'failed', '--shard', '9', '--json'),
    ]);
    const newest = [...failed].reverse().map(([id]) => id);
    expect(JSON.parse(two.out).map((r: { id: string }) => r.id)).toEqual(newest.slice(0, 2));
    expect(JSON.parse(all.out).map((r: { id: string }) => r.id)).toEqual(newest);
    expect(JSON.parse(shard.out)).toEqual([expect.objectContaining({ id: 'cluster-failed-2', shard: 9 })]);
    const outOfRange = await cli('list', 'failed', '--shard', '16');
    expect(outOfRange).toEqual({ code: 1, out: 'queues: --shard must be 0 to 15 (REDIS_SHARDS is 16)' });
  }, 30_000);

  it('retry --failed retries every shard and prints one total', async () => {
    const { code, out } = await cli('retry', '--failed');
    expect(code).toBe(0);
    expect(out).toBe('retried 5 failed job(s) (inbound 3, outbound 2)');
    const states = await Promise.all(failed.map(async ([id]) => (await queues.find(id))?.getState()));
    expect(states).toEqual(['waiting', 'waiting', 'waiting', 'waiting', 'waiting']);
  }, 30_000);
});
