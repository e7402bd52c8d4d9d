import type { RedisClient } from '../redis/index.js';
import { allShards, redisKeys, userShard } from '../redis/keys.js';
import type { AccountType } from '../wechat/custom-message.js';
import { OPENID_PATTERN } from '../wechat/openid.js';
import { actionTime, type WindowGrant, type WindowTrigger, windowGrant } from './rules.js';

/** The timeline's caps: entries per user (0 = no timeline) and the age after which entries are dropped. */
export interface TimelineOptions {
  entries: number;
  maxAgeMs: number;
}

/** 200 entries, 7 days: a few hundred bytes per entry, so about 50 kB for the busiest user. */
export const DEFAULT_TIMELINE: TimelineOptions = { entries: 200, maxAgeMs: 7 * 24 * 3600_000 };

/** How long a user's order list outlives their last push: far beyond a job's retries (about 17 minutes). */
const ORDER_TTL_MS = 24 * 3600_000;
/** Longest summary kept in a timeline entry: enough to recognise a message, never a whole one. */
const SUMMARY_MAX = 40;

/** One event of a user's conversation, as the CLI and the API show it. */
export interface TimelineEntry {
  at: string;
  direction: 'in' | 'out';
  kind: string;
  summary: string;
  jobId: string;
  result: string;
}

/** A user's send window as the CLI and the API show it. */
export interface WindowView {
  /** The window has not ended (nor been closed by WeChat); `left` may still be 0. */
  open: boolean;
  until: string | null;
  left: number;
  trigger: WindowTrigger | null;
}

/** The `pnpm queues user` / `GET /api/v1/users/:appId/:openid` document. */
export interface UserView {
  window: WindowView;
  timeline: TimelineEntry[];
}

/** The ledger's answer before a send: one send taken from the window, or why none may go out. */
export type Take =
  /** `grantAt`: the action time of the grant the send was taken from (a refund needs the same grant). */
  | { ok: true; left: number; until: number; grantAt: number }
  | { ok: false; reason: 'closed' | 'exhausted'; message: string; until: number };

/** What a send's outcome does to the window: give the send back, or close it as WeChat said (45047 / 45015). */
export type SettleEffect = 'refund' | 'exhausted' | 'closed';

/** An outbound timeline entry: the reply's kind and gist, and what became of it. */
export interface OutEntry {
  kind: string;
  summary: string;
  jobId: string;
  result: string;
}

const clip = (value: unknown, max = SUMMARY_MAX) => {
  const s = typeof value === 'string' ? value.replace(/\s+/g, ' ').trim() : '';
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
};

/** The kind and a short preview of an inbound message (never media ids or whole texts). */
function describeInbound(message: Record<string, unknown>): { kind: string; summary: string } {
  if (message.MsgType === 'event') {
    const event = clip(message.Event, 40) || 'event';
    return { kind: event, summary: clip(message.EventKey) };
  }
  const kind = clip(message.MsgType, 40) || '?';
  return { kind, summary: clip(message.Content ?? message.Title ?? message.Label ?? message.Recognition) };
}

/** The kind and a short preview of a custom/send body. */
export function describeReply(item: { msgtype?: unknown; [field: string]: unknown }): {
  kind: string;
  summary: string;
} {
  const kind = typeof item.msgtype === 'string' ? item.msgtype : '?';
  const body = item[kind] as Record<string, unknown> | undefined;
  return { kind, summary: clip(body?.content ?? body?.title) };
}

/** The Lua functions the scripts share: number formatting, a timeline append, a grant, a take. */
const LUA_LIB = `local function n(x) return string.format('%d', x) end
local function append(t, entry, needle, max, ttl)
  if entry == '' or max <= 0 then return end
  if needle ~= '' then
    local recent = redis.call('LRANGE', t, -4, -1)
    for i = 1, #recent do if string.find(recent[i], needle, 1, true) then return end end
  end
  redis.call('RPUSH', t, entry)
  redis.call('LTRIM', t, -max, -1)
  redis.call('PEXPIRE', t, ttl)
end
-- A grant resets, never adds: the sends left become the larger of what is left and what the action allows,
-- the end the later of both (WeChat: 条数不累加 … 更新为最大值 … 最长有效时间). An action at or before the last one
-- applied changes nothing, so a grant written twice (ingress, then worker) counts once.
local function grant(w, at, count, ms, trigger, now)
  if count <= 0 then return 0 end
  local cur = redis.call('HMGET', w, 'until', 'left', 'at', 'trigger', 'closed')
  if at <= (tonumber(cur[3]) or 0) then return 0 end
  local untilNew = at + ms
  if untilNew <= now then return 0 end
  local left = count
  local cuntil = tonumber(cur[1]) or 0
  if cuntil > now and not cur[5] then
    if cuntil > untilNew then untilNew = cuntil; trigger = cur[4] end
    local cleft = tonumber(cur[2]) or 0
    if cleft > left then left = cleft end
  end
  redis.call('HDEL', w, 'closed')
  redis.call('HSET', w, 'until', n(untilNew), 'left', n(left), 'at', n(at), 'trigger', trigger)
  redis.call('PEXPIREAT', w, n(untilNew))
  return untilNew
end
-- One send from the window: {1, left, until, grant's at}, or {0, 'closed' | 'exhausted', until, ''}.
local function take(w, now)
  local cur = redis.call('HMGET', w, 'until', 'left', 'closed', 'at')
  local u = tonumber(cur[1])
  if not u then return {0, 'closed', '0', ''} end
  if cur[3] then return {0, 'closed', cur[3], ''} end
  if u <= now then return {0, 'closed', cur[1], ''} end
  local left = tonumber(cur[2]) or 0
  if left <= 0 then return {0, 'exhausted', cur[1], ''} end
  redis.call('HINCRBY', w, 'left', -1)
  return {1, left - 1, cur[1], cur[4] or '0'}
end
`;

const SCRIPTS = {
  // KEYS window, order, timeline, open-windows index, the push's job key and BullMQ de-duplication key, the
  // user's handoff; ARGV at, count, ms, trigger, now, jobId, entry, needle, max, ttl, orderTtl, openid, handoff
  // idle ms (0: not read) → {granted, seen, handoff state or nil}.
  // Sent just before the job's add: `seen` says whether this push was stored before (a re-delivery), and then
  // nothing changes: no grant, no order entry, no timeline entry, no handoff renewal (the state is only read).
  wxkfIngest: {
    numberOfKeys: 7,
    lua: `${LUA_LIB}
local seen = redis.call('EXISTS', KEYS[5], KEYS[6])
local idle = ARGV[13]
local handoff = false
if seen > 0 then
  if idle ~= '0' then handoff = redis.call('GET', KEYS[7]) end
  return {0, seen, handoff}
end
if idle ~= '0' then handoff = redis.call('GETEX', KEYS[7], 'PX', idle) end
local granted = grant(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]))
if granted > 0 then redis.call('ZADD', KEYS[4], 'GT', granted, ARGV[12]) end
-- A delivery whose first try was not stored (503) may have written its entry: it is among the newest (a
-- bounded look, so a user with a long backlog costs no more per push).
if not redis.call('LPOS', KEYS[2], ARGV[6], 'RANK', -1, 'MAXLEN', 64) then redis.call('RPUSH', KEYS[2], ARGV[6]) end
redis.call('PEXPIRE', KEYS[2], ARGV[11])
append(KEYS[3], ARGV[7], ARGV[8], tonumber(ARGV[9]), ARGV[10])
return {granted, seen, handoff}`,
  },
  // KEYS window, order; ARGV jobId, at, count, ms, trigger, now, take → {0, head} while the job must wait; on its
  // turn {1} or, with take = 1, {1, taken (1/0), left or reason, until, at}: the first send taken in the same trip.
  wxkfTurn: {
    numberOfKeys: 2,
    lua: `${LUA_LIB}
local now = tonumber(ARGV[6])
grant(KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], now)
local head = redis.call('LINDEX', KEYS[2], 0)
if head and head ~= ARGV[1] and redis.call('LPOS', KEYS[2], ARGV[1]) then return {0, head} end
if ARGV[7] ~= '1' then return {1} end
local t = take(KEYS[1], now)
return {1, t[1], t[2], t[3], t[4]}`,
  },
  // KEYS window; ARGV now → {1, left, until, at} or {0, reason, until, ''}
  wxkfTake: {
    numberOfKeys: 1,
    lua: `${LUA_LIB}
return take(KEYS[1], tonumber(ARGV[1]))`,
  },
  // KEYS window, order, timeline, open-windows index; ARGV effect, until, now, entry, max, ttl, release, at, openid
  // → the order's new head.
  // A refund applies only to the grant the send was taken from (same end, same action): a grant since then has
  // reset the count already, and adding the send back to it could over-send.
  wxkfSettle: {
    numberOfKeys: 4,
    lua: `${LUA_LIB}
local w = KEYS[1]
if ARGV[1] == 'refund' then
  local cur = redis.call('HMGET', w, 'until', 'at', 'closed')
  if cur[1] == ARGV[2] and cur[2] == ARGV[8] and not cur[3] then
    redis.call('HINCRBY', w, 'left', 1)
  end
elseif ARGV[1] == 'exhausted' then
  if redis.call('EXISTS', w) == 1 then redis.call('HSET', w, 'left', '0') end
elseif ARGV[1] == 'closed' then
  if redis.call('EXISTS', w) == 1 then redis.call('HSET', w, 'left', '0', 'closed', ARGV[3]) end
  redis.call('ZREM', KEYS[4], ARGV[9])
end
append(KEYS[3], ARGV[4], '', tonumber(ARGV[5]), ARGV[6])
if ARGV[7] == '' then return '' end
redis.call('LREM', KEYS[2], 1, ARGV[7])
return redis.call('LINDEX', KEYS[2], 0) or ''`,
  },
  // KEYS order; ARGV head → drops it if it still is the head; the new head
  wxkfDropHead: {
    numberOfKeys: 1,
    lua: `if redis.call('LINDEX', KEYS[1], 0) == ARGV[1] then redis.call('LPOP', KEYS[1]) end
return redis.call('LINDEX', KEYS[1], 0) or ''`,
  },
} as const;

type ScriptName = keyof typeof SCRIPTS;
type Scripted = RedisClient & Record<ScriptName, (...args: (string | number)[]) => Promise<unknown>>;

/** The grant's script arguments: when, how many, how long, which trigger (zeros when the message grants none). */
function grantArgs(grant: WindowGrant | undefined, at: number | undefined): [number, number, number, string] {
  return grant && at !== undefined ? [at, grant.count, grant.ms, grant.trigger] : [0, 0, 0, ''];
}

/** The take script's answer: {1, left, until, at} or {0, reason, until, ''}. */
type TakeReply = [number, number | string, string, string];

function takeOf([ok, value, until, at]: TakeReply): Take {
  if (ok === 1) return { ok: true, left: Number(value), until: Number(until), grantAt: Number(at) };
  const reason = value === 'exhausted' ? 'exhausted' : 'closed';
  return { ok: false, reason, message: refusal(reason, Number(until)), until: Number(until) };
}

/** The refusal a closed or spent window gives, in words an operator and a caller understand. */
function refusal(reason: 'closed' | 'exhausted', until: number): string {
  if (reason === 'exhausted') return 'no sends left until the user writes again';
  // An ended window's record expires with it: then when it ended is not known any more.
  return until > 0
    ? `window closed at ${new Date(until).toISOString()}`
    : 'window closed (the user has not acted recently)';
}

export interface ConversationOptions {
  timeline?: TimelineOptions;
  /** The clock, in ms (tests move time with their own). */
  now?: () => number;
}

/**
 * A user's conversation state in Redis, shared by every process: the send window and quota (the ledger), the
 * order of their messages, and their timeline. Every per-user key shares the user's hash tag, so each script
 * touches one slot. Each method is one round trip.
 */
export class Conversations {
  readonly timeline: TimelineOptions;
  readonly now: () => number;
  private readonly redis: Scripted;

  constructor(redis: RedisClient, options: ConversationOptions = {}) {
    for (const [name, script] of Object.entries(SCRIPTS)) {
      if (!(name in redis)) redis.defineCommand(name, script);
    }
    this.redis = redis as Scripted;
    this.timeline = options.timeline ?? DEFAULT_TIMELINE;
    this.now = options.now ?? Date.now;
  }

  private keys(appId: string, openid: string): [string, string, string] {
    return [redisKeys.sendWindow(appId, openid), redisKeys.userOrder(appId, openid), redisKeys.timeline(appId, openid)];
  }

  /**
   * A stored push, from the ingress: its grant (if the message grants one, with the open-windows index), its
   * place in the user's order and its timeline entry, in one script on the user's slot, sent just before the
   * job's add. Resolves whether the push was stored before (its job or BullMQ de-duplication key exists): a
   * re-delivery changes nothing. With `handoffIdleMs`, also the user's handoff state (raw JSON), renewed for
   * that long unless the push is a re-delivery.
   */
  async ingest(
    appId: string,
    type: AccountType,
    jobId: string,
    message: Record<string, unknown>,
    options: { receivedAt: number; handoffIdleMs?: number | undefined },
  ): Promise<{ seen: boolean; handoff?: string | undefined }> {
    const { receivedAt, handoffIdleMs = 0 } = options;
    const openid = message.FromUserName;
    if (typeof openid !== 'string' || !OPENID_PATTERN.test(openid)) return { seen: false }; // the worker refuses it
    const grant = windowGrant(type, message);
    const { kind, summary } = describeInbound(message);
    const entry =
      this.timeline.entries > 0 ? JSON.stringify({ t: receivedAt, d: 'in', k: kind, s: summary, j: jobId }) : '';
    const shard = userShard(appId, openid);
    const [, seen, handoff] = (await this.redis.wxkfIngest(
      ...this.keys(appId, openid),
      redisKeys.openWindows(appId, shard),
      redisKeys.inboundJob(shard, jobId),
      redisKeys.inboundDedup(shard, jobId),
      redisKeys.handoff(appId, openid),
      ...grantArgs(grant, actionTime(message.CreateTime)),
      this.now(),
      jobId,
      entry,
      `,"j":${JSON.stringify(jobId)}}`,
      this.timeline.entries,
      this.timeline.maxAgeMs,
      ORDER_TTL_MS,
      openid,
      handoffIdleMs,
    )) as [number, number, string | null];
    return { seen: seen > 0, handoff: handoff ?? undefined };
  }

  /**
   * Whether an inbound job may send now: it is the head of its user's order, or not in it (a job stored some
   * other way). Also applies the job's own grant, idempotently, for jobs the ingress did not store. With `take`,
   * a job whose turn it is also takes its first send from the window in the same round trip (as `take()` would).
   */
  async turn(
    appId: string,
    type: AccountType,
    jobId: string,
    message: Record<string, unknown>,
    options: { take?: boolean } = {},
  ): Promise<{ go: true; take?: Take } | { go: false; head: string }> {
    const openid = String(message.FromUserName);
    const [window, order] = this.keys(appId, openid);
    const grant = windowGrant(type, message);
    const [go, ...rest] = (await this.redis.wxkfTurn(
      window,
      order,
      jobId,
      ...grantArgs(grant, actionTime(message.CreateTime)),
      this.now(),
      options.take ? 1 : 0,
    )) as [number, ...TakeReply] | [0, string];
    if (go !== 1) return { go: false, head: rest[0] as string };
    return rest.length === 4 ? { go: true, take: takeOf(rest as TakeReply) } : { go: true };
  }

  /** Takes one send from the user's window, atomically across processes, or says why none may go out. */
  async take(appId: string, openid: string): Promise<Take> {
    return takeOf((await this.redis.wxkfTake(redisKeys.sendWindow(appId, openid), this.now())) as TakeReply);
  }

  /**
   * After a send (or instead of one): changes the window as its outcome says (a refund gives back the send
   * `taken`), records the timeline entry and, with `release`, takes that job out of the user's order. Resolves the
   * order's new head ('' when none).
   */
  async settle(
    appId: string,
    openid: string,
    outcome: {
      effect?: SettleEffect;
      taken?: { until: number; grantAt: number };
      entry?: OutEntry;
      release?: string;
    },
  ): Promise<string> {
    const { effect, taken, entry, release } = outcome;
    if (!effect && !release && (!entry || this.timeline.entries <= 0)) return '';
    const now = this.now();
    const json =
      entry && this.timeline.entries > 0
        ? JSON.stringify({ t: now, d: 'out', k: entry.kind, s: clip(entry.summary), j: entry.jobId, r: entry.result })
        : '';
    return this.redis.wxkfSettle(
      ...this.keys(appId, openid),
      redisKeys.openWindows(appId, userShard(appId, openid)),
      effect ?? '',
      taken ? String(taken.until) : '',
      now,
      json,
      this.timeline.entries,
      this.timeline.maxAgeMs,
      release ?? '',
      taken ? String(taken.grantAt) : '',
      openid,
    ) as Promise<string>;
  }

  /** Drops `head` from the user's order if it still is the head (its job is gone); resolves the new head. */
  dropHead(appId: string, openid: string, head: string): Promise<string> {
    return this.redis.wxkfDropHead(redisKeys.userOrder(appId, openid), head) as Promise<string>;
  }

  /** The user's window without taking from it; `refusal` says why a send would be refused now. */
  async window(appId: string, openid: string): Promise<WindowView & { refusal?: string }> {
    return this.windowOf(await this.redis.hgetall(redisKeys.sendWindow(appId, openid)));
  }

  private windowOf(hash: Record<string, string>): WindowView & { refusal?: string } {
    const until = Number(hash.until ?? 0);
    const closed = hash.closed ? Number(hash.closed) : undefined;
    const open = until > this.now() && closed === undefined;
    const left = open ? Number(hash.left ?? 0) : 0;
    const view: WindowView & { refusal?: string } = {
      open,
      until: until > 0 ? new Date(closed ?? until).toISOString() : null,
      left,
      trigger: (hash.trigger as WindowTrigger | undefined) ?? null,
    };
    if (!open) view.refusal = refusal('closed', closed ?? until);
    else if (left <= 0) view.refusal = refusal('exhausted', until);
    return view;
  }

  /** The window and the timeline (newest last, entries past the age cap left out). */
  async view(appId: string, openid: string): Promise<UserView> {
    const [windowKey, , timelineKey] = this.keys(appId, openid);
    const [hash, entries] = await Promise.all([this.redis.hgetall(windowKey), this.redis.lrange(timelineKey, 0, -1)]);
    const { refusal: _, ...window } = this.windowOf(hash);
    const oldest = this.now() - this.timeline.maxAgeMs;
    const timeline: TimelineEntry[] = [];
    for (const raw of entries) {
      let e: { t?: number; d?: string; k?: string; s?: string; j?: string; r?: string };
      try {
        e = JSON.parse(raw);
      } catch {
        continue; // not ours: skip rather than fail the whole view
      }
      if (typeof e.t !== 'number' || e.t < oldest) continue;
      timeline.push({
        at: new Date(e.t).toISOString(),
        direction: e.d === 'out' ? 'out' : 'in',
        kind: e.k ?? '',
        summary: e.s ?? '',
        jobId: e.j ?? '',
        result: e.r ?? (e.d === 'out' ? '' : 'received'),
      });
    }
    return { window, timeline };
  }

  /** Users of the account whose window has not ended (ended ones are dropped from the index as it is read). */
  async openWindowCount(appId: string): Promise<number> {
    const now = this.now();
    const counts = await Promise.all(
      allShards().map(async (shard) => {
        const key = redisKeys.openWindows(appId, shard);
        await this.redis.zremrangebyscore(key, '-inf', now);
        return this.redis.zcard(key);
      }),
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  /** Opens or widens a user's window as `trigger` would at `at` (tools and tests; pushes grant by themselves). */
  async grant(appId: string, openid: string, grant: WindowGrant, at = this.now()): Promise<void> {
    const [window, order] = this.keys(appId, openid);
    // A turn for a job in no order: only the grant takes effect.
    await this.redis.wxkfTurn(window, order, '', ...grantArgs(grant, at), this.now());
    await this.redis.zadd(redisKeys.openWindows(appId, userShard(appId, openid)), 'GT', at + grant.ms, openid);
  }
}
