import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { TokenSource } from '../config/index.js';
import type { Logger } from '../log.js';
import { keyspaceOf, type RedisClient, subscriberOf } from '../redis/index.js';
import { type Keyspace, TOKEN_EVENTS } from '../redis/keys.js';
import { defineScript, releaseLockScript, reply } from '../redis/scripts.js';
import { annotate, inSpan } from '../tracing/index.js';
import { TokenUnavailableError, TransportError, WeChatApiError } from './errors.js';
import type { WeChatHttp } from './http.js';
import { expectNotice, type NoticeWaiters, wakeWaiters } from './token-notices.js';
import { requestToken, type TokenAnswer } from './token-request.js';

export interface TokenAccount {
  appId: string;
  appSecret: string;
  /** A `wecom-kf` corp's token comes only from WeCom (source `wecom`); any other account's never does. */
  type?: string;
}

export interface TokenManagerOptions {
  /** A normal (non-subscriber) connection; the manager duplicates it once for its pub/sub wake-ups. */
  redis: RedisClient;
  http: WeChatHttp;
  accounts: TokenAccount[];
  /**
   * `stable`: cgi-bin/stable_token in normal mode (never force_refresh). `classic`: cgi-bin/token. `wecom`: a
   * WeCom corp's cgi-bin/gettoken (the `http` then points at WeCom's API).
   */
  source: TokenSource | 'wecom';
  logger: Logger;
  /** Called once per token request to WeChat with its result ('ok', or the errcode / 'transport'). */
  onRequest?: (appId: string, result: string) => void;
  /** How long the refresh lock is held at most; longer than a token request can take. */
  leaseMs?: number;
  /** Refresh this long before expiry, so no send waits on a refresh in steady state (< 5 min: see stable_token). */
  refreshAheadMs?: number;
  /** After a configuration error (40013, 40125, 40164, 40243, 89503, 45009…), ask again only after this long. */
  cooldownMs?: number;
  /** Longest a caller waits for another process's refresh. */
  waitMs?: number;
  /**
   * How long this process reuses a token it read from Redis without reading it again. Every store or
   * invalidation anywhere in the cluster drops the copy at once (pub/sub); this bounds it if a notice is missed.
   */
  localMs?: number;
}

const storedToken = z.object({ token: z.string(), expiresAt: z.number() });
type StoredToken = z.infer<typeof storedToken>;
const storedCooldown = z.object({ errcode: z.number(), errmsg: z.string() });

// The token's scripts (lua/): store only while the refresh lock is ours; delete only the token that failed.
const storeScript = defineScript('token-store', ['token', 'lock'], ['stored', 'owner', 'ttlMs']);
const invalidateScript = defineScript('token-invalidate', ['token'], ['failed']);

/**
 * One access_token per account for the whole cluster, kept in Redis. Refreshes are single-flight across
 * processes (a lock with an owner and a lease); waiters are woken by pub/sub, not by polling.
 */
export class TokenManager {
  private readonly options: Required<Omit<TokenManagerOptions, 'onRequest'>> & Pick<TokenManagerOptions, 'onRequest'>;
  private readonly accounts: Map<string, TokenAccount>;
  private readonly inflight = new Map<string, Promise<string>>();
  private readonly waiters: NoticeWaiters = new Map();
  /** Tokens read from Redis, reused until `until` or the next notice; only while notices are being received. */
  private readonly local = new Map<string, { token: string; until: number }>();
  private subscriber: RedisClient | undefined;
  private subscribed: Promise<unknown> | undefined;
  /** True only while a subscription is confirmed on the current connection: copies are kept only then. */
  private listening = false;
  /** Counts disconnects: a subscription confirmed for an earlier connection says nothing about this one. */
  private connection = 0;
  /** Notices received so far: a read that a notice overtook is not kept. */
  private notices = 0;
  /** The key layout of the Redis the tokens are shared in. */
  private readonly keys: Keyspace;

  constructor(options: TokenManagerOptions) {
    this.options = {
      leaseMs: 15_000,
      refreshAheadMs: 240_000,
      cooldownMs: 300_000,
      waitMs: 20_000,
      localMs: 5_000,
      ...options,
    };
    // Each manager serves the accounts of its source: a corp never asks WeChat for a token, nor an AppID WeCom.
    const served = options.accounts.filter((a) => (a.type === 'wecom-kf') === (options.source === 'wecom'));
    this.accounts = new Map(served.map((a) => [a.appId, a]));
    this.keys = keyspaceOf(options.redis);
    for (const script of [storeScript, invalidateScript, releaseLockScript]) script.register(options.redis);
  }

  private async read(appId: string): Promise<StoredToken | undefined> {
    const raw = await this.options.redis.get(this.keys.token(appId));
    return raw ? storedToken.safeParse(JSON.parse(raw)).data : undefined;
  }

  /**
   * The account's current token: the cluster's one from Redis (reused for up to `localMs` by this process, and
   * never inside the refresh-ahead window), refreshing it once for the whole cluster when missing.
   */
  async getToken(appId: string): Promise<string> {
    const now = Date.now();
    const copy = this.local.get(appId);
    if (copy && copy.until > now) return copy.token;
    if (!this.listening) void this.listen().catch(() => {}); // notices must flow before anything is reused
    const [notices, connection] = [this.notices, this.connection];
    const stored = await this.read(appId);
    if (!stored) return this.refresh(appId);
    const refreshAt = stored.expiresAt - this.options.refreshAheadMs;
    if (refreshAt <= now) {
      this.refresh(appId).catch((error) =>
        this.options.logger.warn({ appId, err: error.message }, 'token refresh-ahead failed'),
      );
    } else if (this.listening && this.notices === notices && this.connection === connection) {
      this.local.set(appId, { token: stored.token, until: Math.min(now + this.options.localMs, refreshAt) });
    }
    return stored.token;
  }

  /**
   * After 40001/40014/42001: deletes the stored token only if it is still `failedToken`, then returns a token
   * other than it (refreshing once for the cluster if needed).
   */
  async replace(appId: string, failedToken: string): Promise<string> {
    this.local.delete(appId);
    const token = this.keys.token(appId);
    if (reply.int(await invalidateScript(this.options.redis, { token }, { failed: failedToken }))) {
      await this.options.redis.publish(TOKEN_EVENTS, appId); // the other processes drop their copies too
    }
    return this.refresh(appId, failedToken);
  }

  private refresh(appId: string, failedToken?: string): Promise<string> {
    const running = this.inflight.get(appId);
    if (running) return running;
    // A span `access_token refresh` while tracing is on.
    const attributes = {
      'wxkf.app_id': appId,
      'wxkf.token.source': this.options.source,
      'wxkf.token.stale': Boolean(failedToken),
    };
    const started = inSpan('access_token refresh', attributes, () => this.refreshOnce(appId, failedToken)).finally(() =>
      this.inflight.delete(appId),
    );
    this.inflight.set(appId, started);
    return started;
  }

  private usable(stored: StoredToken | undefined, failedToken?: string): stored is StoredToken {
    return Boolean(
      stored && stored.token !== failedToken && stored.expiresAt - Date.now() >= this.options.refreshAheadMs,
    );
  }

  private async refreshOnce(appId: string, failedToken?: string): Promise<string> {
    const deadline = Date.now() + this.options.waitMs;
    await this.listen();
    for (;;) {
      // Expect the notice before looking: a refresh that ends while we look still wakes us.
      const notice = expectNotice(this.waiters, appId);
      try {
        await this.checkCooldown(appId);
        const stored = await this.read(appId);
        if (this.usable(stored, failedToken)) return stored.token;

        const owner = randomBytes(12).toString('hex');
        const lockKey = this.keys.tokenLock(appId);
        if ((await this.options.redis.set(lockKey, owner, 'PX', this.options.leaseMs, 'NX')) === 'OK') {
          try {
            const again = await this.read(appId);
            if (this.usable(again, failedToken)) return again.token;
            const token = await this.fetch(appId, owner);
            if (token !== undefined) return token;
          } finally {
            await releaseLockScript(this.options.redis, { lock: lockKey }, { owner });
            // Announced after the release, whatever the outcome: a waiter that found the lock held gets the
            // notice, and one that looks later finds the lock free or the new token, so none sleeps out the lease.
            await this.options.redis.publish(TOKEN_EVENTS, appId).catch(() => undefined);
          }
          // The lease ran out during the fetch and the answer was not stored: look again.
        } else {
          // Another process is refreshing: wait for its notice, or for its lease to run out if it died.
          const lease = await this.options.redis.pttl(lockKey);
          const remaining = deadline - Date.now();
          if (remaining > 0) await notice.wait(Math.max(20, Math.min(lease > 0 ? lease + 20 : 20, remaining)));
        }
      } finally {
        notice.cancel();
      }
      if (Date.now() >= deadline) {
        throw new TransportError(`waited ${this.options.waitMs} ms for a token refresh`, 'token', 'timeout');
      }
    }
  }

  /** Asks WeChat for a token and stores it if the lock is still `owner`'s; undefined when it was not stored. */
  private async fetch(appId: string, owner: string): Promise<string | undefined> {
    const account = this.accounts.get(appId);
    if (!account) throw new Error(`no account ${appId}`);
    let answer: TokenAnswer;
    try {
      answer = await requestToken(this.options.http, this.options.source, account);
    } catch (error) {
      this.options.onRequest?.(appId, error instanceof WeChatApiError ? String(error.errcode) : 'transport');
      if (error instanceof WeChatApiError && (error.action === 'config' || error.action === 'pause_account')) {
        const cooldown = JSON.stringify({ errcode: error.errcode, errmsg: error.errmsg });
        await this.options.redis.set(this.keys.tokenCooldown(appId), cooldown, 'PX', this.options.cooldownMs);
        this.options.logger.error(
          { appId, errcode: error.errcode, errmsg: error.errmsg, retryInMs: this.options.cooldownMs },
          'access_token request refused: check the AppID, AppSecret and API IP whitelist; token requests paused',
        );
        throw new TokenUnavailableError(appId, error.errcode, error.errmsg, this.options.cooldownMs);
      }
      throw error;
    }
    this.options.onRequest?.(appId, 'ok');
    annotate({ 'wxkf.token.fetched': true }); // this process asked WeChat (the others wait for its notice)
    const ttlMs = answer.expires_in * 1000;
    const stored: StoredToken = { token: answer.access_token, expiresAt: Date.now() + ttlMs };
    const keys = { token: this.keys.token(appId), lock: this.keys.tokenLock(appId) };
    const args = { stored: JSON.stringify(stored), owner, ttlMs };
    if (!reply.int(await storeScript(this.options.redis, keys, args))) {
      this.options.logger.warn({ appId }, 'access_token answer came after the refresh lease ended: not stored');
      return undefined;
    }
    this.options.logger.info(
      { appId, expiresIn: answer.expires_in, source: this.options.source },
      'access_token refreshed',
    );
    return stored.token;
  }

  private async checkCooldown(appId: string): Promise<void> {
    const key = this.keys.tokenCooldown(appId);
    const [raw, ttl] = await Promise.all([this.options.redis.get(key), this.options.redis.pttl(key)]);
    if (!raw) return;
    const { errcode, errmsg } = storedCooldown.parse(JSON.parse(raw));
    throw new TokenUnavailableError(appId, errcode, errmsg, Math.max(ttl, 0));
  }

  private listen(): Promise<unknown> {
    if (!this.subscribed) {
      const subscriber = subscriberOf(this.options.redis);
      subscriber.on('error', () => {}); // outages are logged by the main connection
      // Notices may be missed while disconnected: stop reusing copies until a subscription is confirmed again.
      subscriber.on('close', () => {
        this.connection++;
        this.listening = false;
        this.local.clear();
      });
      subscriber.on('message', (_channel: string, appId: string) => {
        this.notices++;
        this.local.delete(appId);
        wakeWaiters(this.waiters, appId);
      });
      /** Subscribes and, once Redis confirms it on this very connection, allows copies again. */
      const confirm = () => {
        const connection = this.connection;
        return subscriber.subscribe(TOKEN_EVENTS).then(() => {
          if (connection === this.connection) this.listening = true;
        });
      };
      // After a reconnect, 'ready' comes before ioredis's own resubscription is answered: confirm it with a
      // SUBSCRIBE of our own (subscribing twice is harmless).
      subscriber.on('ready', () => void confirm().catch(() => {}));
      this.subscriber = subscriber;
      this.subscribed = confirm();
    }
    return this.subscribed;
  }

  close(): void {
    this.subscriber?.disconnect();
  }
}
