import type { z } from 'zod';
import type { RedisTarget } from '../redis/index.js';
import { DEFAULT_CLUSTER_SHARDS, type redisSchema } from './schema.js';

type RedisEnv = z.output<z.ZodObject<typeof redisSchema>>;

/** The connection choice: REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS (+ name), never two of them. */
export function redisTarget(e: RedisEnv, raw: NodeJS.ProcessEnv, problems: string[]): RedisTarget {
  const common = {
    username: e.REDIS_USERNAME,
    password: e.REDIS_PASSWORD,
    tls: e.REDIS_TLS || e.REDIS_TLS_CA_FILE ? { ca: e.REDIS_TLS_CA_FILE } : undefined,
    durability: e.REDIS_DURABILITY,
  };
  const urlSet = Boolean(raw.REDIS_URL || raw.REDIS_URL_FILE);
  if (e.REDIS_CLUSTER_NODES && e.REDIS_SENTINELS) {
    problems.push('REDIS_CLUSTER_NODES: set REDIS_CLUSTER_NODES or REDIS_SENTINELS, not both');
  }
  if ((e.REDIS_CLUSTER_NODES || e.REDIS_SENTINELS) && urlSet) {
    problems.push('REDIS_URL: set REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS, only one of them');
  }
  if (e.REDIS_SENTINELS && !e.REDIS_SENTINEL_NAME) problems.push('REDIS_SENTINEL_NAME: required with REDIS_SENTINELS');
  if (e.REDIS_SENTINEL_NAME && !e.REDIS_SENTINELS) problems.push('REDIS_SENTINELS: required with REDIS_SENTINEL_NAME');
  if (e.REDIS_SENTINEL_PASSWORD && !e.REDIS_SENTINELS) {
    problems.push('REDIS_SENTINEL_PASSWORD: only with REDIS_SENTINELS');
  }
  if (e.REDIS_CLUSTER_NODES) {
    return {
      kind: 'cluster',
      nodes: e.REDIS_CLUSTER_NODES,
      shards: e.REDIS_SHARDS ?? DEFAULT_CLUSTER_SHARDS,
      ...common,
    };
  }
  if (e.REDIS_SENTINELS) {
    return {
      kind: 'sentinel',
      sentinels: e.REDIS_SENTINELS,
      name: e.REDIS_SENTINEL_NAME ?? '',
      sentinelPassword: e.REDIS_SENTINEL_PASSWORD,
      shards: e.REDIS_SHARDS ?? 1,
      ...common,
    };
  }
  return { kind: 'single', url: e.REDIS_URL, shards: e.REDIS_SHARDS ?? 1, ...common };
}
