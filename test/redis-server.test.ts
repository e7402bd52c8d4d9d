import { RedisServer } from '@wx-kf/testkit';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';

describe('test Redis', () => {
  it('gives every run a Redis to use', async () => {
    const redis = new Redis(inject('redisUrl'), { lazyConnect: true });
    await redis.connect();
    expect(await redis.ping()).toBe('PONG');
    await redis.quit();
  });

  const servers: RedisServer[] = [];
  afterAll(async () => Promise.all(servers.map((s) => s.dispose())));

  it('a private AOF server keeps acknowledged writes across a crash and restart', async () => {
    const server = await RedisServer.start({ appendOnly: true });
    servers.push(server);
    const redis = new Redis(server.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    redis.on('error', () => {});
    await redis.set('k', 'v');
    await server.stop('SIGKILL');
    await expect(redis.get('k')).rejects.toThrow();
    await server.resume();
    expect(await redis.get('k')).toBe('v');
    redis.disconnect();
  });
});
