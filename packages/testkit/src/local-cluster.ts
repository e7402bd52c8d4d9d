import { spawnSync } from 'node:child_process';
import { redisCli, waitUntil } from './redis-cli.js';
import { RedisServer } from './redis-server.js';

export interface LocalClusterOptions {
  primaries?: number;
  /** Replicas per primary (needed for failover). */
  replicas?: number;
  /** How long a node may be unreachable before the cluster fails it over (cluster-node-timeout). */
  nodeTimeoutMs?: number;
}

/** A private Redis Cluster on loopback (each node a RedisServer), for tests and benchmarks. */
export class LocalCluster {
  private constructor(readonly nodes: RedisServer[]) {}

  static async start(options: LocalClusterOptions = {}): Promise<LocalCluster> {
    const count = (options.primaries ?? 3) * (1 + (options.replicas ?? 0));
    const args = [
      '--cluster-enabled',
      'yes',
      '--cluster-node-timeout',
      String(options.nodeTimeoutMs ?? 1000),
      // A replica takes over however long it was cut off (the test kills primaries on purpose).
      '--cluster-replica-validity-factor',
      '0',
    ];
    const nodes = await Promise.all(Array.from({ length: count }, () => RedisServer.start({ args })));
    const cluster = new LocalCluster(nodes);
    try {
      const create = spawnSync(
        'redis-cli',
        [
          '--cluster',
          'create',
          ...nodes.map((n) => `127.0.0.1:${n.port}`),
          '--cluster-replicas',
          String(options.replicas ?? 0),
          '--cluster-yes',
        ],
        { encoding: 'utf8', timeout: 30_000 },
      );
      if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
      await waitUntil('cluster ready', () => cluster.healthy(), 20_000);
      return cluster;
    } catch (error) {
      await cluster.dispose();
      throw error;
    }
  }

  /** Every running node says the cluster is ok and sees every running node's role. */
  healthy(): boolean {
    const running = this.nodes.filter((n) => n.running);
    return running.every((n) => {
      const info = redisCli(n.port, 'cluster', 'info');
      const known = redisCli(n.port, 'cluster', 'nodes')
        .split('\n')
        .filter((l) => !l.includes('fail') && l.includes('connected')).length;
      const replication = redisCli(n.port, 'info', 'replication');
      const synced = !replication.includes('role:slave') || replication.includes('master_link_status:up');
      return info.includes('cluster_state:ok') && known >= running.length && synced;
    });
  }

  /** Seed nodes as REDIS_CLUSTER_NODES wants them. */
  get seeds(): string {
    return this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',');
  }

  /** The running node that is primary for `slot` now (as the first running node sees the cluster). */
  primaryOf(slot: number): RedisServer | undefined {
    const asked = this.nodes.find((x) => x.running);
    if (!asked) return undefined;
    for (const line of redisCli(asked.port, 'cluster', 'nodes').split('\n')) {
      const f = line.split(' ');
      if (!f[2]?.includes('master') || f[2]?.includes('fail') || !f[1]) continue;
      const port = Number(f[1].split('@')[0]?.split(':')[1]);
      // A slot range is `first-last` or a single `slot`.
      const owns = f.slice(8).some((range) => {
        const [first, last = first] = range.split('-').map(Number);
        return first !== undefined && last !== undefined && slot >= first && slot <= last;
      });
      if (owns) return this.nodes.find((x) => x.port === port && x.running);
    }
    return undefined;
  }

  /** The running replicas of `primary`. */
  replicasOf(primary: RedisServer): RedisServer[] {
    const id = redisCli(primary.port, 'cluster', 'myid');
    return this.nodes.filter(
      (n) =>
        n.running &&
        n !== primary &&
        redisCli(n.port, 'cluster', 'nodes')
          .split('\n')
          .some((l) => l.includes('myself') && l.includes(id)),
    );
  }

  /** The running primaries. */
  primaries(): RedisServer[] {
    return this.nodes.filter((n) => n.running && redisCli(n.port, 'role').startsWith('master'));
  }

  async dispose(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.dispose()));
  }
}
