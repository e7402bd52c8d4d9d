import { isRecord } from '../../record.js';
import { keyspaceOf, type RedisClient } from '../../redis/index.js';
import type { Keyspace } from '../../redis/keys.js';
import { defineScript, releaseLockScript, reply } from '../../redis/scripts.js';

// The pull's scripts (lua/wecom-*.lua): every key of one open_kfid shares its slot.
const claimScript = defineScript('wecom-claim', ['pull', 'puller'], ['owner', 'token', 'tokenAt', 'leaseMs']);
const pageScript = defineScript(
  'wecom-page',
  ['pull', 'puller', 'pages'],
  ['owner', 'from', 'next', 'page', 'first', 'last', 'leaseMs'],
);
const storedScript = defineScript('wecom-stored', ['puller', 'pages'], ['owner', 'page', 'leaseMs']);
const finishScript = defineScript('wecom-finish', ['pull', 'puller'], ['owner', 'seen', 'leaseMs']);

/** How long a puller holds an open_kfid without a page: a crashed one's pull is taken over after it. */
export const PULLER_LEASE_MS = 60_000;

/** Where a pull starts (or goes round again): the notices counted, the cursor, the newest Token and when it came. */
export interface PullTurn {
  requested: string;
  cursor: string;
  token?: string | undefined;
  tokenAt: number;
  /** A first pull (from no cursor) is under way: its old messages are history, whoever pulls its pages. */
  first: boolean;
}

/** A pulled page as kept between its pull and its store: whether it came from a pull without a cursor. */
export interface StoredPage {
  first: boolean;
  items: unknown[];
}

/** A page read back, with its stored text (what `pageStored` drops it by). */
export type PendingPage = StoredPage & { raw: string };

/** An open_kfid's pull state as the CLI shows it. */
export interface PullView {
  cursor: string;
  notices: number;
  tokenAt?: string | undefined;
  puller?: string | undefined;
  pages: number;
}

const turnOf = (values: readonly unknown[]): PullTurn => ({
  requested: reply.text(values[0]),
  cursor: reply.text(values[1]),
  token: reply.text(values[2]) || undefined,
  tokenAt: reply.int(values[3] ?? 0),
  first: reply.text(values[4]) === '1',
});

/**
 * An open_kfid's pull in Redis, shared by every worker: the cursor, the notices, the one puller (a lock owned by
 * its job id, with a lease) and the pages pulled but not yet stored. A page and the cursor after it are written by
 * one script, so a crash between pages loses nothing; its jobs are de-duplicated on msgid, so storing a page again
 * repeats nothing.
 */
export class PullState {
  private readonly keys: Keyspace;

  constructor(
    private readonly redis: RedisClient,
    private readonly leaseMs = PULLER_LEASE_MS,
  ) {
    this.keys = keyspaceOf(redis);
    for (const script of [claimScript, pageScript, storedScript, finishScript, releaseLockScript]) {
      script.register(redis);
    }
  }

  private ks(corpId: string, openKfId: string) {
    return {
      pull: this.keys.wecomPull(corpId, openKfId),
      puller: this.keys.wecomPuller(corpId, openKfId),
      pages: this.keys.wecomPages(corpId, openKfId),
    };
  }

  /** Counts a notice and takes the puller's lock for `owner`: the turn to pull, or who pulls already. */
  async claim(
    corpId: string,
    openKfId: string,
    owner: string,
    notice: { token?: string | undefined; at: number },
  ): Promise<PullTurn | { holder: string }> {
    const { pull, puller } = this.ks(corpId, openKfId);
    const args = { owner, token: notice.token ?? '', tokenAt: notice.at, leaseMs: this.leaseMs };
    const [got, ...rest] = reply.list(await claimScript(this.redis, { pull, puller }, args));
    return reply.int(got) === 1 ? turnOf(rest) : { holder: reply.text(rest[0]) };
  }

  /** The oldest page pulled and not yet stored, if any (a crashed puller's, or this one's). */
  async nextPage(corpId: string, openKfId: string): Promise<PendingPage | undefined> {
    const raw = await this.redis.lindex(this.ks(corpId, openKfId).pages, 0);
    if (raw === null) return undefined;
    const page: unknown = JSON.parse(raw);
    if (!isRecord(page) || !Array.isArray(page.items)) return { first: false, items: [], raw };
    const items: unknown[] = page.items;
    return { first: page.first === true, items, raw };
  }

  /**
   * Writes a page with the cursor after it: `saved`, or `lost` (another puller has the lock) or `moved` (the
   * cursor is not the one this page was pulled from: an operator reset it).
   */
  async savePage(
    corpId: string,
    openKfId: string,
    owner: string,
    from: string,
    next: string,
    page: StoredPage & { last: boolean },
  ): Promise<'saved' | 'lost' | 'moved'> {
    const { last, ...kept } = page;
    const text = kept.items.length > 0 ? JSON.stringify(kept) : '';
    const flags = { first: kept.first ? 1 : 0, last: last ? 1 : 0 };
    const args = { owner, from, next, page: text, ...flags, leaseMs: this.leaseMs };
    const written = reply.int(await pageScript(this.redis, this.ks(corpId, openKfId), args));
    return written === 1 ? 'saved' : written === -1 ? 'lost' : 'moved';
  }

  /** Lets go of the open_kfid's pull if `owner` still holds it (a failed pull; a holder whose job is gone). */
  async release(corpId: string, openKfId: string, owner: string): Promise<void> {
    await releaseLockScript(this.redis, { lock: this.ks(corpId, openKfId).puller }, { owner });
  }

  /** Drops a page once its jobs are stored (if it is still the oldest); false when this puller lost the lock. */
  async pageStored(corpId: string, openKfId: string, owner: string, page: PendingPage): Promise<boolean> {
    const { puller, pages } = this.ks(corpId, openKfId);
    const args = { owner, page: page.raw, leaseMs: this.leaseMs };
    return reply.int(await storedScript(this.redis, { puller, pages }, args)) >= 0;
  }

  /** Ends a pull made for `seen` notices: undefined (released), the next turn (notices came since), or 'lost'. */
  async finish(corpId: string, openKfId: string, owner: string, seen: string): Promise<PullTurn | 'lost' | undefined> {
    const { pull, puller } = this.ks(corpId, openKfId);
    const [state, ...rest] = reply.list(
      await finishScript(this.redis, { pull, puller }, { owner, seen, leaseMs: this.leaseMs }),
    );
    const s = reply.int(state);
    return s < 0 ? 'lost' : s === 0 ? undefined : turnOf(rest);
  }

  /** The pull's state, for the CLI. */
  async view(corpId: string, openKfId: string): Promise<PullView> {
    const { pull, puller, pages } = this.ks(corpId, openKfId);
    const [hash, holder, pending] = await Promise.all([
      this.redis.hgetall(pull),
      this.redis.get(puller),
      this.redis.llen(pages),
    ]);
    const tokenAt = Number(hash.tokenAt ?? 0);
    return {
      cursor: hash.cursor ?? '',
      notices: Number(hash.requested ?? 0),
      tokenAt: tokenAt > 0 ? new Date(tokenAt).toISOString() : undefined,
      puller: holder ?? undefined,
      pages: pending,
    };
  }

  /** Keeps an open_kfid among those the catch-up pull visits (WeCom answered a pull of it). */
  async remember(corpId: string, openKfId: string): Promise<void> {
    await this.redis.sadd(this.keys.wecomKfs(corpId), openKfId);
  }

  /** Drops an open_kfid from the catch-up pull's visits (WeCom says it does not exist). */
  async forget(corpId: string, openKfId: string): Promise<void> {
    await this.redis.srem(this.keys.wecomKfs(corpId), openKfId);
  }

  /** The open_kfids the catch-up pull visits, at most `max` of them. */
  async known(corpId: string, max = 10_000): Promise<string[]> {
    const found = new Set<string>();
    let cursor = '0';
    do {
      const [next, members] = await this.redis.sscan(this.keys.wecomKfs(corpId), cursor, 'COUNT', 500);
      for (const member of members) found.add(member);
      cursor = next;
    } while (cursor !== '0' && found.size < max);
    return [...found].slice(0, max);
  }

  /**
   * Forgets the cursor: the next pull starts at what WeCom still keeps (3 days), as a first pull, so its older
   * messages are recorded, not answered. A pull running stops at its next page (its cursor moved).
   */
  async resetCursor(corpId: string, openKfId: string): Promise<void> {
    await this.redis.hdel(this.ks(corpId, openKfId).pull, 'cursor');
  }
}
