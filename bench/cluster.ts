// The store compared: the wx-kf ingress and one worker on a single Redis and on a 3-shard local Redis Cluster
// (3 primaries, no replicas), in the same run. CPU per push and per send is read from /proc for the ingress,
// the worker and every Redis process: the costs docs/scaling.md sizes deployments from.
import { accountEnv } from '@wx-kf/shared/config';
import { freePort, LocalCluster, RedisServer, ServiceProcess } from '@wx-kf/testkit';
import { buildPush, deliverPush, Simulator, sampleMessage } from '@wx-kf/wechat-sim';
import { cpuSeconds } from './lib.js';

const ACCOUNT = {
  appId: 'wxbenchcluster001',
  appSecret: 'bench-cluster-secret',
  token: 'benchClusterToken',
  aesKey: 'BenchClusterStoreComparisonEncodingAESKey00',
};
const SECONDS = Number(process.env.BENCH_CLUSTER_SECONDS ?? 10);
const DRAIN = Number(process.env.BENCH_CLUSTER_JOBS ?? 3000);
const CONNECTIONS = 32;

interface Row {
  store: string;
  pushesPerSecond: number;
  ingressUs: number;
  redisPushUs: number;
  sendsPerSecond: number;
  workerUs: number;
  redisSendUs: number;
}

const cpu = (pids: number[]) => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);

async function measure(store: string, redisEnv: NodeJS.ProcessEnv, redisPids: number[], sim: Simulator): Promise<Row> {
  const env = {
    ...accountEnv(ACCOUNT),
    WECHAT_API_BASE: sim.url,
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    ...redisEnv,
  };
  const port = await freePort();
  const ingress = ServiceProcess.start('ingress', { ...env, LOG_LEVEL: 'info', PORT: String(port) });
  await ingress.waitFor('ingress listening');
  const url = `http://127.0.0.1:${port}/wechat/${ACCOUNT.appId}`;
  const pushes = Array.from({ length: 40_000 }, (_, i) =>
    buildPush({ account: ACCOUNT, message: sampleMessage('text', { fromUser: `o_bench_${i}` }), mode: 'safe' }),
  );
  // Warm-up, then a timed run of new pushes (each a job) from CONNECTIONS concurrent senders.
  await Promise.all(pushes.slice(0, 2000).map((p) => deliverPush(url, p)));
  let next = 2000;
  let stored = 0;
  const [ingress0, redis0, t0] = [cpuSeconds(ingress.pid), cpu(redisPids), performance.now()];
  const until = Date.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (Date.now() < until && next < pushes.length) {
        const [d] = await deliverPush(url, pushes[next++] as (typeof pushes)[number]);
        if (d?.status === 200) stored++;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const ingressCpu = cpuSeconds(ingress.pid) - ingress0;
  const redisPushCpu = cpu(redisPids) - redis0;
  await ingress.stop('SIGTERM');

  // One worker drains what is stored (the rules reply with nothing: a send per message comes from the fallback).
  const total = next;
  sim.reset();
  const [redis1, t1] = [cpu(redisPids), performance.now()];
  const worker = ServiceProcess.start('worker', { ...env, LOG_LEVEL: 'info', WORKER_CONCURRENCY: '64' });
  await worker.waitFor('worker started');
  const worker0 = cpuSeconds(worker.pid);
  const target = Math.min(total, DRAIN);
  while (sim.state.messages.length < target) await new Promise((r) => setTimeout(r, 20));
  const drainSeconds = (performance.now() - t1) / 1000;
  const sends = sim.state.messages.length;
  const row: Row = {
    store,
    pushesPerSecond: stored / seconds,
    ingressUs: (ingressCpu / stored) * 1e6,
    redisPushUs: (redisPushCpu / stored) * 1e6,
    sendsPerSecond: sends / drainSeconds,
    workerUs: ((cpuSeconds(worker.pid) - worker0) / sends) * 1e6,
    redisSendUs: ((cpu(redisPids) - redis1) / sends) * 1e6,
  };
  await worker.stop('SIGKILL');
  return row;
}

/** The table for `pnpm bench cluster` (part of `pnpm bench`). */
export async function benchCluster(): Promise<string> {
  const sim = new Simulator({
    accounts: [{ appId: ACCOUNT.appId, appSecret: ACCOUNT.appSecret, type: 'miniprogram' }],
  });
  await sim.listen();
  // Every message gets one text reply, so each drained job is one custom/send.
  const { writeFileSync, mkdtempSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const rules = join(mkdtempSync(join(tmpdir(), 'wx-kf-bench-')), 'rules.json');
  writeFileSync(rules, JSON.stringify({ fallback: [{ msgtype: 'text', text: { content: 'ok' } }] }));
  const rows: Row[] = [];
  const single = await RedisServer.start();
  try {
    rows.push(
      await measure('single Redis (1 shard)', { REDIS_URL: single.url, REPLY_RULES_FILE: rules }, [single.pid], sim),
    );
  } finally {
    await single.dispose();
  }
  const cluster = await LocalCluster.start({ primaries: 3 });
  try {
    rows.push(
      await measure(
        'Redis Cluster, 3 primaries (3 shards)',
        { REDIS_CLUSTER_NODES: cluster.seeds, REDIS_SHARDS: '3', REPLY_RULES_FILE: rules },
        cluster.nodes.map((n) => n.pid),
        sim,
      ),
    );
  } finally {
    await cluster.dispose();
    await sim.close();
  }
  const f = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(1));
  return [
    '### Store: single Redis and a 3-shard Redis Cluster (same run)',
    '',
    '| store | pushes/s (1 ingress) | ingress CPU µs/push | Redis CPU µs/push (all nodes) | sends/s (1 worker) | worker CPU µs/send | Redis CPU µs/send (all nodes) |',
    '|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.store} | ${f(r.pushesPerSecond)} | ${f(r.ingressUs)} | ${f(r.redisPushUs)} | ${f(r.sendsPerSecond)} | ${f(r.workerUs)} | ${f(r.redisSendUs)} |`,
    ),
    '',
    `Safe-mode XML pushes of new users, ${CONNECTIONS} concurrent, ${SECONDS} s per store; then one worker (concurrency 64)`,
    `drains up to ${DRAIN} of them, one custom/send each, against the simulator. Everything shares this machine's cores,`,
    'so the cluster row shows the overhead of sharding (more connections, per-node round trips), not its speed-up; the',
    'CPU columns are what docs/scaling.md multiplies out.',
  ].join('\n');
}
