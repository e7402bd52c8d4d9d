import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../log.js';

/**
 * - `producer`: the ingress; fails fast while Redis is unreachable (no offline queue, bounded command time),
 *   so a push is answered 503 instead of hanging past WeChat's 5 s.
 * - `worker`: BullMQ workers; waits for Redis forever (`maxRetriesPerRequest: null`, as BullMQ requires).
 * - `client`: everything else (CLI, token store, admin).
 */
export type RedisRole = 'producer' | 'worker' | 'client';

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
  client: { maxRetriesPerRequest: 2, connectTimeout: 5000, enableAutoPipelining: true },
};

/** The one Redis connection factory: reconnects with capped backoff and logs each outage once. */
export function createRedis(url: string, role: RedisRole, log?: Logger): Redis {
  const redis = new Redis(url, {
    ...roleOptions[role],
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2000),
    connectionName: `wx-kf-${role}`,
  });
  let down = false;
  redis.on('error', (error: NodeJS.ErrnoException) => {
    if (down) return;
    down = true;
    log?.error({ role, code: error.code, err: error.message }, 'redis connection error');
  });
  redis.on('ready', () => {
    if (down) log?.info({ role }, 'redis connection restored');
    down = false;
  });
  return redis;
}
export * from './keys.js';
