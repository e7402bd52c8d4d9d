import { redisCli, waitUntil } from './redis-cli.js';
import { RedisServer } from './redis-server.js';

export interface LocalSentinelOptions {
  /** The master's name the sentinels monitor. */
  name?: string;
  /** How long the primary may be silent before the sentinels call it down. */
  downAfterMs?: number;
}

/** A private Sentinel set on loopback: a primary, a replica and three sentinels (quorum 2). */
export class LocalSentinel {
  private constructor(
    readonly name: string,
    readonly servers: RedisServer[],
    readonly sentinels: RedisServer[],
  ) {}

  static async start(options: LocalSentinelOptions = {}): Promise<LocalSentinel> {
    const name = options.name ?? 'wxkf';
    const primary = await RedisServer.start();
    const replica = await RedisServer.start({ args: ['--replicaof', '127.0.0.1', String(primary.port)] });
    const config = [
      `sentinel monitor ${name} 127.0.0.1 ${primary.port} 2`,
      `sentinel down-after-milliseconds ${name} ${options.downAfterMs ?? 1000}`,
      `sentinel failover-timeout ${name} 5000`,
      `sentinel parallel-syncs ${name} 1`,
      '',
    ].join('\n');
    const sentinels = await Promise.all([0, 1, 2].map(() => RedisServer.start({ sentinelConfig: config })));
    const set = new LocalSentinel(name, [primary, replica], sentinels);
    try {
      await waitUntil(
        'replica in sync and sentinels agreed',
        () =>
          redisCli(replica.port, 'info', 'replication').includes('master_link_status:up') &&
          sentinels.every((s) => /num-other-sentinels\s+2/.test(redisCli(s.port, 'sentinel', 'master', name))),
        20_000,
      );
      return set;
    } catch (error) {
      await set.dispose();
      throw error;
    }
  }

  /** REDIS_SENTINELS for this set. */
  get addresses(): string {
    return this.sentinels.map((s) => `127.0.0.1:${s.port}`).join(',');
  }

  /** The server the sentinels name as primary now. */
  primary(): RedisServer | undefined {
    const [, port] = redisCli(this.sentinels[0]?.port ?? 0, 'sentinel', 'get-master-addr-by-name', this.name).split(
      '\n',
    );
    return this.servers.find((s) => s.port === Number(port));
  }

  /** Every running server that is not the primary replicates it with a live link. */
  synced(): boolean {
    const primary = this.primary();
    return this.servers
      .filter((s) => s.running && s !== primary)
      .every((s) => redisCli(s.port, 'info', 'replication').includes('master_link_status:up'));
  }

  async dispose(): Promise<void> {
    await Promise.all([...this.sentinels, ...this.servers].map((s) => s.dispose()));
  }
}
