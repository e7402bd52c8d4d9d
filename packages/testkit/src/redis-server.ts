// A private redis-server on loopback: started on a free port, stopped, restarted and flushed without touching
// anyone else's Redis. Node built-ins only (see local-redis.ts).
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
