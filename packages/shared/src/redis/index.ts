import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../log.js';
import { Keyspace } from './keys.js';

/**
 * - `producer`: the ingress; fails fast while Redis is unreachable (no offline queue, bounded command time),
 *   so a push is answered 503 instead of hanging past WeChat's 5 s.
 * - `worker`: BullMQ workers; waits for Redis forever (`maxRetriesPerRequest: null`, as BullMQ requires).
 * - `client`: everything else (the worker's own commands: token, pause, conversations; CLI, admin).
 */
export type RedisRole = 'producer' | 'worker' | 'client';

/** A connection from the factory: one server (direct or through Sentinel), or a Redis Cluster. */
export type RedisClient = Redis | Cluster;

export interface HostPort {
  host: string;
  port: number;
}

/** What `REDIS_*` configure: where Redis is, how to log in, the shard count and the durability of a push. */
export type RedisTarget = (
  | { kind: 'single'; url: string }
  | { kind: 'cluster'; nodes: HostPort[] }
  | { kind: 'sentinel'; sentinels: HostPort[]; name: string; sentinelPassword?: string | undefined }
) & {
  username?: string | undefined;
  password?: string | undefined;
  /** TLS to every node (and sentinel); `ca` is a PEM file for a private CA. */
  tls?: { ca?: string | undefined } | undefined;
  /** Shards of the key layout (see keys.ts). */
  shards: number;
  /** `replicated`: the ingress answers `success` only once a replica has the push (WAIT). */
  durability: 'local' | 'replicated';
};

const roleOptions: Record<RedisRole, RedisOptions> = {
  // Auto-pipelining sends the commands of concurrent pushes in one write: fewer syscalls per push.
  producer: {
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    maxRetriesPerRequest: 1,
    commandTimeout: 2000,
    connectTimeout: 2000,
  },
  worker: { maxRetriesPerRequest: null },
  // No auto-pipelining: a worker's jobs send their commands in ticks of their own, so most would go out as a
  // pipeline of one (measured without it: about 6 % less worker CPU per message, 30 MiB less RSS; performance.md).
  client: { maxRetriesPerRequest: 2, connectTimeout: 5000 },
};

const backoff = (attempt: number) => Math.min(50 * 2 ** attempt, 2000);

function tlsOptions(target: RedisTarget): ConnectionOptions | undefined {
  if (!target.tls) return undefined;
  return target.tls.ca ? { ca: readFileSync(target.tls.ca) } : {};
}

function connect(target: RedisTarget, role: RedisRole): RedisClient {
  const { enableAutoPipelining, enableOfflineQueue, ...perNode } = roleOptions[role];
  const auth = {
    ...(target.username ? { username: target.username } : {}),
    ...(target.password ? { password: target.password } : {}),
  };
  const tls = tlsOptions(target);
  const common: RedisOptions = {
    ...roleOptions[role],
    ...auth,
    ...(tls ? { tls } : {}),
    retryStrategy: backoff,
    connectionName: `wx-kf-${role}`,
  };
  if (target.kind === 'single') return new Redis(target.url, common);
  if (target.kind === 'sentinel') {
    return new Redis({
      ...common,
      sentinels: target.sentinels,
      name: target.name,
      ...(target.sentinelPassword ? { sentinelPassword: target.sentinelPassword } : {}),
      ...(tls ? { enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
      sentinelRetryStrategy: backoff,
      // Follows +switch-master at once instead of waiting for the old primary's connection to time out.
      failoverDetector: true,
    });
  }
  const options: ClusterOptions = {
    redisOptions: { ...perNode, ...auth, ...(tls ? { tls } : {}), connectionName: `wx-kf-${role}` },
    enableAutoPipelining: enableAutoPipelining ?? false,
    enableOfflineQueue: enableOfflineQueue ?? true,
    clusterRetryStrategy: backoff,
    // During a failover the cluster answers CLUSTERDOWN / TRYAGAIN or a node is gone: retry soon, a bounded
    // number of times (the producer's command timeout still bounds a push).
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    slotsRefreshTimeout: 2000,
    ...(tls ? { dnsLookup: (address: string, done: (e: null, a: string) => void) => done(null, address) } : {}),
  };
  return new Cluster(target.nodes, options);
}

/** The key layout each connection made by `createRedis` serves (see `keyspaceOf`). */
const layouts = new WeakMap<RedisClient, Keyspace>();

/**
 * The key layout of the deployment `client` talks to: the Keyspace its target's shard count gave when
 * `createRedis` made it (a duplicate made by `subscriberOf` too), else the one-shard layout (a plain URL).
 */
export function keyspaceOf(client: RedisClient): Keyspace {
  return layouts.get(client) ?? Keyspace.SINGLE;
}

/**
 * The one Redis connection factory: a URL (tools and tests) or the configured target (a single Redis,
 * Sentinel or a Cluster, with its shard count: the connection carries that key layout, `keyspaceOf`).
 * Reconnects with capped backoff and logs each outage once.
 */
export function createRedis(target: string, role: RedisRole, log?: Logger): Redis;
export function createRedis(target: RedisTarget, role: RedisRole, log?: Logger): RedisClient;
export function createRedis(target: string | RedisTarget, role: RedisRole, log?: Logger): RedisClient {
  const resolved: RedisTarget =
    typeof target === 'string' ? { kind: 'single', url: target, shards: 1, durability: 'local' } : target;
  const redis = connect(resolved, role);
  layouts.set(redis, new Keyspace(resolved.shards));
  // One line when Redis becomes unreachable, however many connections the process has (a worker has two, each
  // of which reconnects several times a second), and one when every one of them is back.
  const down = log ? (downByLogger.get(log) ?? new Set<RedisClient>()) : new Set<RedisClient>();
  if (log) downByLogger.set(log, down);
  redis.on('error', (error: NodeJS.ErrnoException) => {
    if (down.has(redis)) return;
    down.add(redis);
    if (down.size === 1) log?.error({ role, code: error.code, err: error.message }, 'redis connection error');
  });
  redis.on('ready', () => {
    if (!down.delete(redis)) return;
    if (down.size === 0) log?.info({ role }, 'redis connection restored');
  });
  redis.once('end', () => down.delete(redis));
  return redis;
}

/** The connections of a process (its logger) that are down: the error and restore lines are per process. */
const downByLogger = new WeakMap<Logger, Set<RedisClient>>();

const CONNECTION_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE']);

/**
 * Whether `error` is only a lost or refused Redis connection, which `createRedis` already reports once: callers with
 * their own error events (BullMQ workers) leave these out instead of logging each reconnection attempt.
 */
export function isConnectionError(error: unknown): boolean {
  const e = error as NodeJS.ErrnoException | undefined;
  if (!e) return false;
  if (e.code && CONNECTION_ERRORS.has(e.code)) return true;
  return /ECONNREFUSED|ECONNRESET|Connection is closed|Stream isn't writeable|connect ETIMEDOUT/.test(
    String(e.message),
  );
}

const ready = new WeakMap<RedisClient, Promise<void>>();

/**
 * Resolves once `client` can take commands: at once when it is connected, else when it next is (a producer
 * connection, which fails fast instead of queueing, refuses commands while it is still connecting). The caller
 * bounds the wait.
 */
export function whenWritable(client: RedisClient): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  let waiting = ready.get(client);
  if (!waiting) {
    waiting = new Promise<void>((resolve) => client.once('ready', () => resolve())).finally(() => ready.delete(client));
    ready.set(client, waiting);
  }
  return waiting;
}

/** The primaries: each node of a Cluster (for SCANs and counts that must visit every shard), else the one. */
export function primaries(client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client];
}

/** A connection like `client` for pub/sub (waits for Redis instead of failing: it only listens). */
export function subscriberOf(client: RedisClient): RedisClient {
  const subscriber =
    client instanceof Cluster
      ? client.duplicate([], {
          enableOfflineQueue: true,
          redisOptions: { ...client.options.redisOptions, maxRetriesPerRequest: null },
        })
      : client.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null });
  layouts.set(subscriber, keyspaceOf(client));
  return subscriber;
}

// CRC16/XMODEM, the function Redis Cluster maps a key (its hash tag) to one of 16 384 slots with.
const CRC16 = Array.from({ length: 256 }, (_, i) => {
  let c = i << 8;
  for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
  return c;
});

/** The cluster slot of a key (its `{tag}` if it has one). */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  const close = open >= 0 ? key.indexOf('}', open + 1) : -1;
  const tagged = close > open + 1 ? key.slice(open + 1, close) : key;
  let crc = 0;
  for (const byte of Buffer.from(tagged)) crc = ((crc << 8) & 0xffff) ^ (CRC16[((crc >> 8) ^ byte) & 0xff] as number);
  return crc % 16384;
}

/** No replica confirmed a write in time (or the primary changed under it): the push is answered 503. */
class ReplicationError extends Error {
  override readonly name = 'ReplicationError';
}

/** Counts each connection's closes: a WAIT on a connection that reconnected since the write proves nothing. */
const closes = new WeakMap<Redis, { n: number }>();
function closeCounter(node: Redis): { n: number } {
  let counter = closes.get(node);
  if (!counter) {
    const c = { n: 0 };
    node.on('close', () => c.n++);
    closes.set(node, c);
    counter = c;
  }
  return counter;
}

/** The connection that takes writes to shard `shard`: the client itself, or the Cluster node owning the slot. */
function writerOf(client: RedisClient, shard: number): Redis | undefined {
  if (!(client instanceof Cluster)) return client;
  const owner = client.slots[keySlot(keyspaceOf(client).shardTag(shard))]?.[0];
  return client.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === owner);
}

/**
 * For REDIS_DURABILITY=replicated: `begin(shard)` before a write, then `confirm()` after it resolves once at
 * least one replica has everything written on that connection (`WAIT 1 timeoutMs`), and rejects with
 * ReplicationError when none did in time, or when the write may have gone elsewhere (the slot moved, the
 * connection reconnected: a WAIT on a fresh connection has nothing to wait for and would answer at once).
 */
export function replicaWaiter(client: RedisClient, timeoutMs: number) {
  return (shard: number) => {
    const node = writerOf(client, shard);
    const closed = node ? closeCounter(node).n : 0;
    return async (): Promise<void> => {
      if (!node) throw new ReplicationError(`no primary known for shard ${shard}`);
      const moved = () => writerOf(client, shard) !== node || closeCounter(node).n !== closed;
      if (moved()) throw new ReplicationError('the primary changed during the write');
      const replicas = await node.wait(1, timeoutMs);
      if (replicas < 1) throw new ReplicationError(`no replica confirmed the write within ${timeoutMs} ms`);
      if (moved()) throw new ReplicationError('the primary changed during the write');
    };
  };
}

export * from './keys.js';
export { defineScript, loadScript, releaseLockScript, reply, type ScriptCall } from './scripts.js';
