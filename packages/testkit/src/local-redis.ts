// A private redis-server (single, Cluster, Sentinel) on free loopback ports, for tests, benchmarks and the
// no-credentials demo. It loads only Node built-ins, so the demo imports it as `@wx-kf/testkit/local-redis`
// without the rest of the kit (which loads vitest).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A free TCP port on loopback (bind to 0, read it, release it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** True when a Redis answers PING on 127.0.0.1:port. */
export function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.setTimeout(500);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString().startsWith('+PONG'));
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

export function hasRedisServer(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

export interface RedisServerOptions {
  /** Persist with AOF (appendfsync always) in a private directory, so a restart keeps the data. */
  appendOnly?: boolean;
  port?: number;
  /**
   * In a process group of its own, so a terminal's Ctrl-C (sent to the whole foreground group) does not kill
   * it before its user has drained (the demo).
   */
  detached?: boolean;
  /** More `redis-server` arguments (`--cluster-enabled yes`, `--replicaof 127.0.0.1 6379`, …). */
  args?: string[];
  /** Run as a Sentinel with this configuration (written to a file of its own: Sentinel rewrites it). */
  sentinelConfig?: string;
}

/**
 * A private `redis-server` on loopback, for tests, benchmarks and the demo: it can be stopped, restarted and
 * flushed without touching anyone else's Redis.
 */
export class RedisServer {
  private child: ChildProcess | undefined;
  private started = false;
  readonly dir = mkdtempSync(join(tmpdir(), 'wx-kf-redis-'));

  private constructor(
    readonly port: number,
    private readonly options: RedisServerOptions,
  ) {}

  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    if (!hasRedisServer()) {
      throw new Error('redis-server is not installed: install it (apt-get install -y redis-server) or set REDIS_URL');
    }
    const server = new RedisServer(options.port ?? (await freePort()), options);
    await server.resume();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts (again) on the same port and directory. */
  async resume(): Promise<void> {
    const conf = join(this.dir, 'sentinel.conf');
    if (this.options.sentinelConfig !== undefined && !this.started) writeFileSync(conf, this.options.sentinelConfig);
    this.started = true;
    const args = [
      ...(this.options.sentinelConfig !== undefined ? [conf, '--sentinel'] : []),
      '--port',
      String(this.port),
      '--bind',
      '127.0.0.1',
      '--dir',
      this.dir,
      '--save',
      '',
      '--enable-debug-command',
      'yes',
    ];
    if (this.options.sentinelConfig === undefined) {
      args.push(
        ...(this.options.appendOnly ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
      );
    }
    args.push(...(this.options.args ?? []));
    const child = spawn('redis-server', args, { stdio: 'ignore', detached: this.options.detached ?? false });
    this.child = child;
    // Out of our process group it would outlive us: stop it when we exit, however that happens.
    if (this.options.detached) process.once('exit', () => child.kill('SIGKILL'));
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null)
        throw new Error(`redis-server exited with code ${child.exitCode} on port ${this.port}`);
      if (await answersPing(this.port)) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    child.kill('SIGKILL');
    throw new Error(`redis-server did not answer on port ${this.port} within 10 s`);
  }

  /** Stops the server (SIGKILL simulates a crash; SIGTERM a clean shutdown). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  }

  /** Makes the server unresponsive for `seconds` (DEBUG SLEEP): a replica that stops taking the stream. */
  freeze(seconds: number): void {
    spawn('redis-cli', ['-p', String(this.port), 'DEBUG', 'SLEEP', String(seconds)], { stdio: 'ignore' });
  }

  /** The server's process id (0 when stopped). */
  get pid(): number {
    return this.child?.pid ?? 0;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null;
  }

  async dispose(): Promise<void> {
    await this.stop('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One answer of `redis-cli -p port …` (the reply as text). */
export function redisCli(port: number, ...args: string[]): string {
  const run = spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8', timeout: 10_000 });
  return (run.stdout ?? '').trim();
}

async function until(what: string, check: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

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
      await until('cluster ready', () => cluster.healthy(), 20_000);
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
      const owns = f.slice(8).some((r) => {
        const [a, b] = r.split('-').map(Number);
        return slot >= (a as number) && slot <= (b ?? (a as number));
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
      await until(
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
