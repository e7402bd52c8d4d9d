import { type ContextOptions, sentEntry, userEntry } from '../ai/context.js';
import { grantChanges } from '../notify/events.js';
import { keyspaceOf, type RedisClient } from '../redis/index.js';
import type { Keyspace } from '../redis/keys.js';
import { reply } from '../redis/scripts.js';
import type { AccountType } from '../wechat/custom-message.js';
import { OPENID_PATTERN } from '../wechat/openid.js';
import { Grants } from './grants.js';
import { actionTime, type WindowGrant, windowGrant } from './rules.js';
import { dropHeadScript, ingestScript, settleScript, takeScript, turnScript } from './scripts.js';
import {
  DEFAULT_TIMELINE,
  inboundEntry,
  type OutEntry,
  outboundEntry,
  readTimeline,
  type TimelineEntry,
  type TimelineOptions,
} from './timeline.js';
import { type SettleEffect, type Take, takeOf, type WindowView, windowView } from './window.js';

/** How long a user's order list outlives their last push: far beyond a job's retries (about 17 minutes). */
const ORDER_TTL_MS = 24 * 3600_000;

/** The `pnpm queues user` / `GET /api/v1/users/:appId/:openid` document. */
export interface UserView {
  window: WindowView;
  timeline: TimelineEntry[];
  /** Subscribe-message grants left, by template id. */
  grants: Record<string, number>;
}

/** A turn's answer: go (with the first send when asked for), or wait behind `head`. */
export type Turn = { go: true; take?: Take } | { go: false; head: string };

/** The AI context kept per user (docs/ai.md): its caps, and the accounts that keep one (those using the model). */
export interface ConversationContext extends ContextOptions {
  accounts: ReadonlySet<string>;
}

/** A message WeChat accepted, for the AI context: the reply and the inbound job (or send API call) it answered. */
export interface SentMessage {
  item: { msgtype?: unknown; [field: string]: unknown };
  jobId: string;
}

export interface ConversationOptions {
  timeline?: TimelineOptions;
  /** The AI context; unset (or no accounts, or 0 entries) = none is kept. */
  context?: ConversationContext | undefined;
  /** The clock, in ms (tests move time with their own). */
  now?: () => number;
}

/** A grant's script arguments (zeros when the message grants none, or has no time to date it by). */
function grantArgs(grant: WindowGrant | undefined, at: number | undefined) {
  return grant && at !== undefined
    ? { at, count: grant.count, ms: grant.ms, trigger: grant.trigger }
    : { at: 0, count: 0, ms: 0, trigger: '' };
}

/**
 * A user's conversation state in Redis, shared by every process: the send window and quota (the ledger,
 * window.ts), the order of their messages, and their timeline (timeline.ts). Every per-user key shares the
 * user's hash tag, so each script (lua/) touches one slot. Each method is one round trip.
 */
export class Conversations {
  readonly timeline: TimelineOptions;
  readonly now: () => number;
  readonly context: ConversationContext | undefined;
  /** The user's subscribe-message grants, beside the window (grants.ts). */
  readonly grants: Grants;
  private readonly keys: Keyspace;

  constructor(
    private readonly redis: RedisClient,
    options: ConversationOptions = {},
  ) {
    this.keys = keyspaceOf(redis);
    for (const script of [ingestScript, turnScript, takeScript, settleScript, dropHeadScript]) script.register(redis);
    this.timeline = options.timeline ?? DEFAULT_TIMELINE;
    this.now = options.now ?? Date.now;
    this.context = options.context && options.context.entries > 0 ? options.context : undefined;
    this.grants = new Grants(redis, this.now);
  }

  /** Whether this account keeps an AI context for its users. */
  keepsContext(appId: string): boolean {
    return this.context?.accounts.has(appId) === true;
  }

  /** The context script arguments for an entry (none when the account keeps no context). */
  private contextArgs(appId: string, entry: string | undefined) {
    const on = entry !== undefined && this.context !== undefined && this.keepsContext(appId);
    return {
      contextEntry: on ? entry : '',
      contextMax: on ? (this.context?.entries ?? 0) : 0,
      contextTtl: this.context?.maxAgeMs ?? 0,
    };
  }

  /** The keys of one user's window, order and timeline, and their shard's open-windows index. */
  private userKeys(appId: string, openid: string) {
    return {
      window: this.keys.sendWindow(appId, openid),
      order: this.keys.userOrder(appId, openid),
      timeline: this.keys.timeline(appId, openid),
      openWindows: this.keys.openWindows(appId, this.keys.userShard(appId, openid)),
      context: this.keys.aiContext(appId, openid),
    };
  }

  /**
   * A stored push, from the ingress: its grant (if the message grants one, with the open-windows index), its
   * place in the user's order and its timeline entry, in one script on the user's slot, sent just before the
   * job's add. Resolves whether the push was stored before (its job or BullMQ de-duplication key exists): a
   * re-delivery changes nothing. With `handoffIdleMs`, also the user's handoff state (raw JSON), renewed for
   * that long unless the push is a re-delivery. A subscription push's grant changes go in the same pipeline
   * (grants.ts: applied once per push, even by two deliveries stored at the same time).
   */
  async ingest(
    appId: string,
    type: AccountType,
    jobId: string,
    message: Record<string, unknown>,
    options: { receivedAt: number; handoffIdleMs?: number | undefined; transferred?: boolean | undefined },
  ): Promise<{ seen: boolean; handoff?: string | undefined }> {
    const openid = message.FromUserName;
    if (typeof openid !== 'string' || !OPENID_PATTERN.test(openid)) return { seen: false }; // the worker refuses it
    const shard = this.keys.userShard(appId, openid);
    // The timeline's entry only when there is a timeline (its JSON is the biggest allocation of the call).
    const timeline = this.timeline.entries > 0;
    const { entry, needle } = timeline
      ? inboundEntry(message, jobId, options.receivedAt, options.transferred)
      : { entry: '', needle: '' };
    const changes = grantChanges(message);
    const ingested = ingestScript(
      this.redis,
      {
        ...this.userKeys(appId, openid),
        job: this.keys.inboundJob(shard, jobId),
        dedup: this.keys.inboundDedup(shard, jobId),
        handoff: this.keys.handoff(appId, openid),
      },
      {
        ...grantArgs(windowGrant(type, message), actionTime(message.CreateTime)),
        now: this.now(),
        jobId,
        entry,
        needle,
        max: this.timeline.entries,
        ttl: this.timeline.maxAgeMs,
        orderTtl: ORDER_TTL_MS,
        openid,
        handoffIdleMs: options.handoffIdleMs ?? 0,
      },
    );
    // Sent right after the ingest script, before anything is awaited: both see the keys as the add finds them.
    const granted = changes.length > 0 && this.grants.applyPush(appId, openid, jobId, changes, true);
    const [result] = await Promise.all([ingested.then(reply.list), granted]);
    return { seen: reply.int(result[1]) > 0, handoff: reply.optionalText(result[2]) };
  }

  /**
   * Whether an inbound job may send now: it is the head of its user's order, or not in it (a job stored some
   * other way). Also applies the job's own grant and subscription changes, idempotently, for jobs the ingress
   * did not store. With `take`, a job whose turn it is also takes its first send from the window in the same
   * round trip (as `take()` would).
   */
  async turn(
    appId: string,
    type: AccountType,
    jobId: string,
    message: Record<string, unknown>,
    options: { take?: boolean } = {},
  ): Promise<Turn> {
    const openid = String(message.FromUserName);
    const { window, order, context } = this.userKeys(appId, openid);
    const grant = grantArgs(windowGrant(type, message), actionTime(message.CreateTime));
    const said = this.keepsContext(appId) ? userEntry(message, jobId, this.now()) : undefined;
    const args = {
      ...grant,
      jobId,
      now: this.now(),
      take: options.take ? 1 : 0,
      ...this.contextArgs(appId, said?.entry),
      contextNeedle: said?.needle ?? '',
    };
    const changes = grantChanges(message);
    if (changes.length > 0) await this.grants.applyPush(appId, openid, jobId, changes, false);
    const [go, ...rest] = reply.list(await turnScript(this.redis, { window, order, context }, args));
    if (reply.int(go) !== 1) return { go: false, head: reply.text(rest[0]) };
    return rest.length === 4 ? { go: true, take: takeOf(rest) } : { go: true };
  }

  /** Takes one send from the user's window, atomically across processes, or says why none may go out. */
  async take(appId: string, openid: string): Promise<Take> {
    const window = this.keys.sendWindow(appId, openid);
    return takeOf(reply.list(await takeScript(this.redis, { window }, { now: this.now() })));
  }

  /**
   * After a send (or instead of one): changes the window as its outcome says (a refund gives back the send
   * `taken`), records the timeline entry (and, for a message WeChat accepted, `sent`, the AI context entry) and,
   * with `release`, takes that job out of the user's order. Resolves the order's new head ('' when none).
   */
  async settle(
    appId: string,
    openid: string,
    outcome: {
      effect?: SettleEffect;
      taken?: { until: number; grantAt: number };
      entry?: OutEntry;
      release?: string;
      sent?: SentMessage;
    },
  ): Promise<string> {
    const { effect, taken, entry, release, sent } = outcome;
    const context = this.contextArgs(appId, sent ? sentEntry(sent.item, sent.jobId, this.now()) : undefined);
    if (!effect && !release && !context.contextEntry && (!entry || this.timeline.entries <= 0)) return '';
    const now = this.now();
    const head = await settleScript(this.redis, this.userKeys(appId, openid), {
      effect: effect ?? '',
      takenUntil: taken ? String(taken.until) : '',
      now,
      entry: entry && this.timeline.entries > 0 ? outboundEntry(entry, now) : '',
      max: this.timeline.entries,
      ttl: this.timeline.maxAgeMs,
      release: release ?? '',
      at: taken ? String(taken.grantAt) : '',
      openid,
      ...context,
    });
    return reply.text(head);
  }

  /** Drops `head` from the user's order if it still is the head (its job is gone); resolves the new head. */
  async dropHead(appId: string, openid: string, head: string): Promise<string> {
    return reply.text(await dropHeadScript(this.redis, { order: this.keys.userOrder(appId, openid) }, { head }));
  }

  /** The user's window without taking from it; `refusal` says why a send would be refused now. */
  async window(appId: string, openid: string): Promise<WindowView & { refusal?: string }> {
    return windowView(await this.redis.hgetall(this.keys.sendWindow(appId, openid)), this.now());
  }

  /** The AI context entries kept for the user (stored JSON, oldest first): what `readHistory` reads. */
  async contextEntries(appId: string, openid: string): Promise<string[]> {
    if (!this.keepsContext(appId)) return [];
    return this.redis.lrange(this.keys.aiContext(appId, openid), 0, -1);
  }

  /** The window, the timeline (newest last, entries past the age cap left out) and the grants. */
  async view(appId: string, openid: string): Promise<UserView> {
    const { window: windowKey, timeline: timelineKey } = this.userKeys(appId, openid);
    const [hash, entries, grants] = await Promise.all([
      this.redis.hgetall(windowKey),
      this.redis.lrange(timelineKey, 0, -1),
      this.grants.counts(appId, openid),
    ]);
    const { refusal: _, ...window } = windowView(hash, this.now());
    return { window, timeline: readTimeline(entries, this.now() - this.timeline.maxAgeMs), grants };
  }

  /** Users of the account whose window has not ended (ended ones are dropped from the index as it is read). */
  async openWindowCount(appId: string): Promise<number> {
    const now = this.now();
    const counts = await Promise.all(
      this.keys.allShards().map(async (shard) => {
        const key = this.keys.openWindows(appId, shard);
        await this.redis.zremrangebyscore(key, '-inf', now);
        return this.redis.zcard(key);
      }),
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  /** Opens or widens a user's window as `trigger` would at `at` (tools and tests; pushes grant by themselves). */
  async grant(appId: string, openid: string, grant: WindowGrant, at = this.now()): Promise<void> {
    const { window, order, openWindows, context } = this.userKeys(appId, openid);
    // A turn for a job in no order: only the grant takes effect.
    await turnScript(
      this.redis,
      { window, order, context },
      {
        ...grantArgs(grant, at),
        jobId: '',
        now: this.now(),
        take: 0,
        ...this.contextArgs(appId, undefined),
        contextNeedle: '',
      },
    );
    await this.redis.zadd(openWindows, 'GT', at + grant.ms, openid);
  }
}
