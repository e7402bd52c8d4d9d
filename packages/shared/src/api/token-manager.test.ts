import { connect, createServer, type Server, type Socket } from 'node:net';
import { TokenManager, TokenUnavailableError, WeChatHttp } from '@wx-kf/shared/api';
import { createLogger } from '@wx-kf/shared/log';
import { createRedis, Keyspace, TOKEN_EVENTS } from '@wx-kf/shared/redis';
import { isolatedRedisUrl } from '@wx-kf/testkit';
import { Simulator } from '@wx-kf/wechat-sim';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

const keyspace = Keyspace.SINGLE;

const APP_ID = 'wxtokens000000001';
const sim = new Simulator({ accounts: [{ appId: APP_ID, appSecret: 'tok-secret', type: 'miniprogram' }] });
const logger = createLogger('tokens', { level: 'silent' });
let redis: Redis;
let redisUrl: string;
let http: WeChatHttp;
const managers: TokenManager[] = [];

function manager(options: Partial<ConstructorParameters<typeof TokenManager>[0]> = {}): TokenManager {
  // Each manager has its own Redis connection, like a separate process.
  const m = new TokenManager({
    http,
    accounts: [{ appId: APP_ID, appSecret: 'tok-secret' }],
    source: 'stable',
    logger,
    ...options,
    redis: options.redis ?? redis.duplicate(),
  });
  managers.push(m);
  return m;
}
const tokenKey = keyspace.token(APP_ID);
const lockKey = keyspace.tokenLock(APP_ID);
const listening = (m: TokenManager) => (m as unknown as { listening: boolean }).listening;

async function until(check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * A TCP proxy to Redis that can hold back a connection's SUBSCRIBE (and what follows it) and drop the
 * connections that subscribed: a re-subscription that Redis has not confirmed yet, on demand.
 */
/** Listens on a free loopback port; the Redis URL of this proxy to `target` (same database). */
async function listenAsRedis(server: Server, target: URL): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return `redis://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}${target.pathname}`;
}

async function subscribeHoldingProxy(target: URL) {
  const state = { hold: false, held: 0, subscribers: new Set<Socket>(), release: [] as (() => void)[] };
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    const queue: Buffer[] = [];
    let holding = false;
    client.on('data', (chunk: Buffer) => {
      if (chunk.toString('latin1').toLowerCase().includes('subscribe')) {
        state.subscribers.add(client);
        if (state.hold && !holding) {
          holding = true;
          state.held++;
          state.release.push(() => {
            holding = false;
            for (const c of queue.splice(0)) upstream.write(c);
          });
        }
      }
      if (holding) queue.push(chunk);
      else upstream.write(chunk);
    });
    upstream.on('data', (chunk) => client.write(chunk));
    const end = () => {
      client.destroy();
      upstream.destroy();
      state.subscribers.delete(client);
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  return {
    url: await listenAsRedis(server, target),
    state,
    dropSubscribers: () => {
      for (const s of state.subscribers) s.destroy();
    },
    releaseAll: () => {
      state.hold = false;
      for (const r of state.release.splice(0)) r();
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/**
 * A TCP proxy to Redis that holds back the answer to a `PTTL` of the refresh lock until a token notice has been
 * delivered to a subscriber behind it: a waiter that reads the lease at the last moment before the refresh ends,
 * and hears the notice before it has read the answer.
 */
async function lateLeaseProxy(target: URL) {
  const state = { heldLease: false, noticed: false, release: [] as (() => void)[] };
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    const held: Buffer[] = [];
    let holding = false;
    client.on('data', (chunk: Buffer) => {
      const text = chunk.toString('latin1');
      if (!state.noticed && /pttl/i.test(text) && text.includes(lockKey)) {
        holding = true;
        state.heldLease = true;
        state.release.push(() => {
          holding = false;
          for (const c of held.splice(0)) client.write(c);
        });
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (holding) held.push(chunk);
      else client.write(chunk);
      if (state.heldLease && chunk.toString('latin1').includes(TOKEN_EVENTS)) {
        // Delivered to the subscriber first, then the lease answer.
        state.noticed = true;
        setTimeout(() => {
          for (const r of state.release.splice(0)) r();
        }, 50);
      }
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  return {
    url: await listenAsRedis(server, target),
    state,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

beforeAll(async () => {
  http = new WeChatHttp({ baseUrl: await sim.listen() });
  redisUrl = await isolatedRedisUrl();
  redis = createRedis(redisUrl, 'client');
});
beforeEach(async () => {
  sim.reset();
  await redis.flushdb();
});
afterAll(async () => {
  for (const m of managers) m.close();
  redis.disconnect();
  await http.close();
  await sim.close();
});

describe('TokenManager', () => {
  it('a lock holder that died mid-refresh blocks the others only until its lease ends', async () => {
    // What a process killed during its token request leaves behind: the lock, with its lease running.
    await redis.set(lockKey, 'dead-process', 'PX', 600);
    const started = Date.now();
    const tokens = await Promise.all(
      [manager({ leaseMs: 600 }), manager({ leaseMs: 600 })].map((m) => m.getToken(APP_ID)),
    );
    const waited = Date.now() - started;
    expect(new Set(tokens).size).toBe(1);
    expect(waited).toBeGreaterThanOrEqual(500);
    expect(waited).toBeLessThan(5000);
    expect(sim.state.tokenRequestCount(APP_ID)).toBe(1);
  });

  it('waiters are woken by the refresher, not by polling', async () => {
    sim.faults.addLatency({ path: '/cgi-bin/stable_token', fixedMs: 300 });
    const [a, b] = [manager({ leaseMs: 10_000 }), manager({ leaseMs: 10_000 })];
    const started = Date.now();
    const [ta, tb] = await Promise.all([a.getToken(APP_ID), b.getToken(APP_ID)]);
    expect(ta).toBe(tb);
    // b waited for a's refresh (300 ms), far less than the 10 s lease it would sleep to without a wake-up.
    expect(Date.now() - started).toBeLessThan(2000);
    expect(sim.state.tokenRequestCount(APP_ID)).toBe(1);
  });

  it('a waiter that hears the notice before the lease it read gets the token at once, not after the lease', async () => {
    sim.faults.addLatency({ path: '/cgi-bin/stable_token', fixedMs: 300 });
    const proxy = await lateLeaseProxy(new URL(redisUrl));
    const conn = createRedis(proxy.url, 'client');
    const waiter = manager({ redis: conn, leaseMs: 10_000 });
    try {
      const refreshed = manager({ leaseMs: 10_000 }).getToken(APP_ID);
      await until(async () => (await redis.exists(lockKey)) === 1);
      const started = Date.now();
      // The waiter reads the lease while the refresh is running; the answer reaches it only after the notice.
      const token = await Promise.race([
        waiter.getToken(APP_ID),
        new Promise((r) => setTimeout(r, 3000, 'still waiting for the 10 s lease')),
      ]);
      expect(proxy.state.heldLease && proxy.state.noticed).toBe(true);
      expect(token).toBe(await refreshed);
      expect(Date.now() - started).toBeLessThan(2000); // the 300 ms refresh, not the lease
      expect(sim.state.tokenRequestCount(APP_ID)).toBe(1);
    } finally {
      waiter.close();
      conn.disconnect();
      await proxy.close();
    }
  });

  it('a slow refresher never overwrites a newer token', async () => {
    const slow = manager({ leaseMs: 100 });
    const fast = manager({ leaseMs: 100 });
    sim.fail({ path: '/cgi-bin/stable_token', script: [{ delayMs: 600 }] });
    const slowToken = slow.getToken(APP_ID); // takes the lock, then its request hangs past the lease
    await new Promise((r) => setTimeout(r, 250));
    sim.state.invalidateTokens(APP_ID); // WeChat hands the fast one a new token…
    const fastToken = await fast.getToken(APP_ID);
    sim.state.invalidateTokens(APP_ID); // …and the slow one, answered last, yet another
    // The slow refresher's answer came last but belongs to an older refresh: it keeps the newer token.
    expect(await slowToken).toBe(fastToken);
    expect(sim.state.tokenRequestCount(APP_ID)).toBe(2);
    const stored = JSON.parse((await redis.get(tokenKey)) ?? '{}');
    expect(stored.token).toBe(fastToken);
  });

  it('replaces a failed token only if it still is the stored one', async () => {
    const m = manager();
    const first = await m.getToken(APP_ID);
    sim.state.invalidateTokens(APP_ID);
    const second = await m.replace(APP_ID, first);
    expect(second).not.toBe(first);
    // A late 40001 for the old token must not throw away the new one.
    expect(await manager().replace(APP_ID, first)).toBe(second);
    expect(sim.state.tokenRequestCount(APP_ID)).toBe(2);
  });

  it('reuses a token it read for a bounded time, and drops it when another process replaces it', async () => {
    const [a, b] = [manager({ localMs: 400 }), manager()];
    const first = await a.getToken(APP_ID);
    await expect.poll(() => (a as unknown as { listening: boolean }).listening).toBe(true);
    // Its own refresh's notice (sent after the lock's release) has come: a copy read now is not dropped by it.
    await expect.poll(() => (a as unknown as { notices: number }).notices).toBeGreaterThan(0);
    expect(await a.getToken(APP_ID)).toBe(first); // read again, now kept
    // A change that no notice announces (as if it were missed) is seen once the copy runs out, not before.
    const stored = JSON.parse((await redis.get(tokenKey)) ?? '{}');
    await redis.set(tokenKey, JSON.stringify({ ...stored, token: 'unannounced' }), 'PX', 60_000);
    expect(await a.getToken(APP_ID)).toBe(first);
    await expect.poll(() => a.getToken(APP_ID), { timeout: 2000 }).toBe('unannounced');
    // Another process's replacement is announced: a picks it up at once, well before its copy would run out.
    const long = manager({ localMs: 60_000 });
    expect(await long.getToken(APP_ID)).toBe('unannounced');
    await expect.poll(() => (long as unknown as { listening: boolean }).listening).toBe(true);
    expect(await long.getToken(APP_ID)).toBe('unannounced');
    const replaced = await b.replace(APP_ID, 'unannounced');
    expect(replaced).not.toBe('unannounced');
    await expect.poll(() => long.getToken(APP_ID), { timeout: 1000 }).toBe(replaced);
    expect(sim.state.tokenRequestCount(APP_ID)).toBe(2);
  });

  it('classic mode: one request for many callers, refreshed ahead of expiry, the old token still valid in the overlap', async () => {
    const [a, b] = [manager({ source: 'classic' }), manager({ source: 'classic' })];
    const tokens = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).getToken(APP_ID)));
    expect(new Set(tokens).size).toBe(1);
    expect(sim.state.tokenRequests.get(APP_ID)).toEqual({ classic: 1, stable: 0 });
    // Bring the stored token inside the refresh-ahead window: the next read returns it and refreshes behind.
    // (A process that starts now: a and b may still reuse their copies for a few seconds.)
    const stored = JSON.parse((await redis.get(tokenKey)) ?? '{}');
    await redis.set(tokenKey, JSON.stringify({ ...stored, expiresAt: Date.now() + 60_000 }), 'PX', 60_000);
    const c = manager({ source: 'classic' });
    expect(await c.getToken(APP_ID)).toBe(tokens[0]);
    await new Promise((r) => setTimeout(r, 200));
    const fresh = await c.getToken(APP_ID);
    expect(fresh).not.toBe(tokens[0]);
    expect(sim.state.tokenRequests.get(APP_ID)).toEqual({ classic: 2, stable: 0 });
    expect(sim.state.checkToken(tokens[0]).ok).toBe(true); // the 5-minute overlap keeps in-flight sends working
  });

  it('never asks for force_refresh, even through an invalidation storm', async () => {
    const m = manager();
    let token = await m.getToken(APP_ID);
    for (let i = 0; i < 5; i++) {
      sim.state.invalidateTokens(APP_ID);
      token = await m.replace(APP_ID, token);
    }
    expect(sim.state.tokenRequestCount(APP_ID)).toBe(6);
    expect(sim.state.forceRefreshes).toBe(0);
  });

  it('a failed fetch wakes the waiters at once: they look again instead of sleeping out the lease', async () => {
    sim.faults.addLatency({ path: '/cgi-bin/stable_token', fixedMs: 200 });
    sim.fail({ path: '/cgi-bin/stable_token', script: [{ http: 502 }] });
    // Without a wake-up the waiter would sleep until its 10 s wait (or the 30 s lease) ran out.
    const [failing, waiter] = [manager({ leaseMs: 30_000 }), manager({ leaseMs: 30_000, waitMs: 10_000 })];
    const failed = failing.getToken(APP_ID).then(
      () => 'ok',
      (error: Error) => error.name,
    );
    await until(async () => (await redis.exists(lockKey)) === 1);
    const started = Date.now();
    const token = await waiter.getToken(APP_ID);
    expect(Date.now() - started).toBeLessThan(5000); // about 400 ms: two 200 ms requests
    expect(await failed).toBe('TransportError');
    expect(token).toMatch(/^SIM_/);
    expect(sim.state.tokenRequestCount(APP_ID)).toBe(2);
  });

  it('a refused fetch wakes the waiters with its cool-down at once', async () => {
    sim.faults.addLatency({ path: '/cgi-bin/stable_token', fixedMs: 200 });
    sim.fail({ path: '/cgi-bin/stable_token', script: [{ errcode: 40164, errmsg: 'invalid ip' }] });
    const [failing, waiter] = [manager({ leaseMs: 30_000 }), manager({ leaseMs: 30_000, waitMs: 3000 })];
    const failed = failing.getToken(APP_ID).catch((error: Error) => error);
    await until(async () => (await redis.exists(lockKey)) === 1);
    await expect(waiter.getToken(APP_ID)).rejects.toBeInstanceOf(TokenUnavailableError);
    expect(await failed).toBeInstanceOf(TokenUnavailableError);
    expect(sim.state.tokenRequestCount(APP_ID)).toBe(1);
  });

  it('a fetch that outlived its lease cannot store over a deletion', async () => {
    // Its own simulator: the first token answer is held back after WeChat issued it (slow on the way back).
    const own = new Simulator({ accounts: [{ appId: APP_ID, appSecret: 'tok-secret', type: 'miniprogram' }] });
    const issued: string[] = [];
    let first = true;
    own.app.addHook('onSend', async (req, _reply, payload) => {
      if (!req.url.startsWith('/cgi-bin/token')) return payload;
      issued.push(JSON.parse(String(payload)).access_token);
      if (first) {
        first = false;
        await new Promise((r) => setTimeout(r, 600));
      }
      return payload;
    });
    const ownHttp = new WeChatHttp({ baseUrl: await own.listen() });
    try {
      const slow = manager({ http: ownHttp, leaseMs: 100, source: 'classic' });
      const fast = manager({ http: ownHttp, leaseMs: 100, source: 'classic' });
      const slowToken = slow.getToken(APP_ID); // WeChat issues its token, the answer is on its way for 600 ms
      await until(() => issued.length === 1);
      const fastToken = await fast.getToken(APP_ID); // after the slow lease: a newer token is stored…
      expect(fastToken).toBe(issued[1]);
      await redis.del(tokenKey); // …and deleted, as after a 40001
      await slowToken;
      // The slow answer (the oldest token) never landed: the stored one is the newest WeChat issued.
      const stored = JSON.parse((await redis.get(tokenKey)) ?? '{}').token;
      expect(stored).not.toBe(issued[0]);
      expect(stored).toBe(issued.at(-1));
    } finally {
      await ownHttp.close();
      await own.close();
    }
  });

  it('after a reconnect, copies are not reused until Redis confirms the re-subscription', async () => {
    const proxy = await subscribeHoldingProxy(new URL(redisUrl));
    const conn = createRedis(proxy.url, 'client');
    const m = manager({ redis: conn, localMs: 60_000 });
    try {
      const token = await m.getToken(APP_ID);
      await until(() => listening(m));
      // The subscriber connection drops; its re-subscription is held back by the proxy.
      proxy.state.hold = true;
      proxy.dropSubscribers();
      await until(() => proxy.state.held > 0);
      const stored = JSON.parse((await redis.get(tokenKey)) ?? '{}');
      const change = (t: string) => redis.set(tokenKey, JSON.stringify({ ...stored, token: t }), 'PX', 60_000);
      // Changes that no notice announces (one would be missed now): each read must go to Redis.
      await change('first');
      expect(await m.getToken(APP_ID)).toBe('first');
      await change('second');
      expect(await m.getToken(APP_ID)).toBe('second');
      expect(listening(m)).toBe(false);
      proxy.releaseAll();
      await until(() => listening(m));
      expect(token).toMatch(/^SIM_/);
    } finally {
      m.close();
      conn.disconnect();
      await proxy.close();
    }
  });
});
