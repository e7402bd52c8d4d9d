import { Redis } from 'ioredis';
import { inject } from 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The run's test Redis: REDIS_URL, or a private redis-server started by the global setup. */
    redisUrl: string;
  }
}

/**
 * A Redis database of its own for the calling test file, on the run's test Redis: a counter in DB 0 hands
 * out DBs 1–15 in turn (test files run at most a few at a time), and the DB is flushed before use.
 */
export async function isolatedRedisUrl(): Promise<string> {
  const base = new URL(inject('redisUrl'));
  base.pathname = '';
  const admin = new Redis(base.toString());
  try {
    const n = await admin.incr('wx-kf:test:db-counter');
    const db = (n % 15) + 1;
    await admin.select(db);
    await admin.flushdb();
    base.pathname = `/${db}`;
    return base.toString();
  } finally {
    admin.disconnect();
  }
}
