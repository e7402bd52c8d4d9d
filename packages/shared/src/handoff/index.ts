import { Counter, type Registry } from 'prom-client';
import type { AccountConfig, Config } from '../config/index.js';
import type { Logger } from '../log.js';
import { keyspaceOf, type RedisClient } from '../redis/index.js';
import type { Keyspace } from '../redis/keys.js';
import { defineScript, reply } from '../redis/scripts.js';

/**
 * Why a handoff opened or closed: a transfer rule, the user's handler, an operator (CLI / admin API), WeChat's
 * session events, or the idle timeout.
 */
export type HandoffReason =
  | 'rule'
  | 'handler'
  | 'operator'
  | 'kf_create_session'
  | 'kf_switch_session'
  | 'kf_close_session'
  | 'ai'
  | 'session_state'
  | 'idle';

/** A user's handoff as stored (JSON). A closed record stays a short while so late, older events do not reopen it. */
export interface HandoffState {
  open: boolean;
  /** The agent's KfAccount (`prefix@account`), when known. */
  agent?: string | undefined;
  reason: HandoffReason;
  /** Unix ms when it opened (a closed record: when it closed). */
  since: number;
  /** The CreateTime (ms) of the latest kf event applied; an older event does not apply over it. */
  at: number;
}

/** The handoff change the caller asks for. `force` (rule, handler, operator) applies whatever the stored order. */
export interface HandoffChange {
  reason: HandoffReason;
  agent?: string | undefined;
  /** When a kf event happened (ms: its CreateTime × 1000); our own (forced) changes keep the stored mark. */
  at?: number;
  force?: boolean;
}

/** How long a closed record is kept to order late events against (WeChat re-delivers within seconds). */
const CLOSED_RECORD_MS = 10 * 60_000;

/** One script for every change, so a change and the order check are atomic (lua/handoff-change.lua). */
const changeScript = defineScript(
  'handoff-change',
  ['state'],
  ['op', 'force', 'at', 'now', 'agent', 'reason', 'idleMs', 'closedRecordMs'],
);

/**
 * Whether an account keeps a handoff state: `on`/`off`, or `auto` (transfer rules, rules that answer with the
 * model, which may hand the user over, a handler, an Official Account).
 */
export function usesHandoff(
  account: Pick<AccountConfig, 'handoff' | 'type'>,
  has: { transferRules: boolean; handler: boolean; ai?: boolean },
): boolean {
  const setting = account.handoff ?? 'auto';
  if (setting !== 'auto') return setting === 'on';
  // An Official Account's and a WeCom corp's sessions can move to a person in their own tools at any time.
  return (
    has.transferRules ||
    has.handler ||
    has.ai === true ||
    account.type === 'officialaccount' ||
    account.type === 'wecom-kf'
  );
}

/** The configured accounts that use handoff, given each account's rules (whether they can transfer or use the model). */
export function handoffAccounts(
  config: Pick<Config, 'accounts' | 'handler'>,
  rules: ReadonlyMap<string, { transfers: boolean; usesAi?: boolean }>,
): Set<string> {
  const handler = Boolean(config.handler);
  return new Set(
    config.accounts
      .filter((a) => {
        const r = rules.get(a.appId);
        return usesHandoff(a, { transferRules: Boolean(r?.transfers), handler, ai: Boolean(r?.usesAi) });
      })
      .map((a) => a.appId),
  );
}

/** Parses a stored state; undefined for none or for anything that is not one (the key is ours, but be safe). */
export function parseHandoff(raw: string | null | undefined): HandoffState | undefined {
  if (!raw) return undefined;
  try {
    const s = JSON.parse(raw) as HandoffState;
    return typeof s === 'object' && s !== null && typeof s.open === 'boolean' ? s : undefined;
  } catch {
    return undefined;
  }
}

export interface HandoffsOptions {
  redis: RedisClient;
  /** A handoff with no message from the user for this long closes (HANDOFF_IDLE_TIMEOUT_SECONDS). */
  idleMs: number;
  logger?: Logger | undefined;
  /** Called on every applied open or close (metrics: handoffs opened and closed, by reason). */
  onChange?: ((change: 'opened' | 'closed', appId: string, reason: HandoffReason) => void) | undefined;
  now?: () => number;
}

/**
 * The handoff state per (account, user), in Redis, shared by ingress, workers and admin: while open, the
 * ingress transfers the user's messages and the worker sends them nothing. It expires after `idleMs` without
 * a message (each new message through the ingress renews it, in the store's script: Conversations.ingest); the
 * account's index lets `sweep` notice and count those idle closes.
 */
export class Handoffs {
  private readonly redis: RedisClient;
  private readonly keys: Keyspace;
  readonly idleMs: number;
  private readonly now: () => number;

  constructor(private readonly options: HandoffsOptions) {
    this.redis = options.redis;
    this.keys = keyspaceOf(options.redis);
    changeScript.register(options.redis);
    this.idleMs = options.idleMs;
    this.now = options.now ?? Date.now;
  }

  /** The user's state, without renewing it. */
  async get(appId: string, openid: string): Promise<HandoffState | undefined> {
    return parseHandoff(await this.redis.get(this.keys.handoff(appId, openid)));
  }

  /** True while the user is with a human. */
  async isOpen(appId: string, openid: string): Promise<boolean> {
    return (await this.get(appId, openid))?.open === true;
  }

  /** Opens (or moves to another agent) a user's handoff; resolves the new state, or undefined when an older event. */
  async open(appId: string, openid: string, change: HandoffChange): Promise<HandoffState | undefined> {
    const [before, applied, after] = await this.run('open', appId, openid, change);
    if (!applied) return undefined;
    const was = parseHandoff(before);
    await this.redis.zadd(this.keys.handoffIndex(appId), this.now(), openid);
    const state = parseHandoff(after);
    if (!was?.open) this.options.onChange?.('opened', appId, change.reason);
    this.options.logger?.info(
      { appId, openid, agent: state?.agent, reason: change.reason, from: was?.open ? was.agent : undefined },
      was?.open ? 'handoff moved' : 'handoff opened',
    );
    return state;
  }

  /** Closes a user's handoff; resolves the state it closed, or undefined when none was open (or a newer one is). */
  async close(appId: string, openid: string, change: HandoffChange): Promise<HandoffState | undefined> {
    const [before, applied] = await this.run('close', appId, openid, change);
    if (!applied) return undefined;
    await this.redis.zrem(this.keys.handoffIndex(appId), openid);
    const was = parseHandoff(before);
    this.closed(appId, openid, change.reason, was);
    return was;
  }

  private closed(appId: string, openid: string, reason: HandoffReason, was: HandoffState | undefined) {
    this.options.onChange?.('closed', appId, reason);
    const minutes = was ? Math.round((this.now() - was.since) / 6000) / 10 : undefined;
    this.options.logger?.info({ appId, openid, agent: was?.agent, reason, minutes }, 'handoff closed');
  }

  /** Runs a change: {state before, applied, state after (an applied open only)}. */
  private async run(op: 'open' | 'close', appId: string, openid: string, c: HandoffChange) {
    const now = this.now();
    const [before, applied, after] = reply.list(
      await changeScript(
        this.redis,
        { state: this.keys.handoff(appId, openid) },
        {
          op,
          force: c.force ? '1' : '0',
          at: Math.floor(c.at ?? now),
          now,
          agent: c.agent ?? '',
          reason: c.reason,
          idleMs: this.idleMs,
          closedRecordMs: CLOSED_RECORD_MS,
        },
      ),
    );
    return [reply.optionalText(before), reply.int(applied) === 1, reply.optionalText(after)] as const;
  }

  /**
   * Notices handoffs that expired (no message for the idle timeout): removes them from the account's index and
   * reports each once, cluster-wide (ZREM decides which process counts it). Resolves how many closed.
   */
  async sweep(appId: string, limit = 500): Promise<number> {
    const index = this.keys.handoffIndex(appId);
    // Only entries older than the idle timeout can have expired; open ones are re-scored when seen.
    const due = await this.redis.zrangebyscore(index, '-inf', this.now() - this.idleMs, 'LIMIT', 0, limit);
    let closed = 0;
    for (const openid of due) {
      const state = parseHandoff(await this.redis.get(this.keys.handoff(appId, openid)));
      if (state?.open) {
        await this.redis.zadd(index, 'XX', this.now(), openid);
        continue;
      }
      if ((await this.redis.zrem(index, openid)) === 1 && !state) {
        closed++;
        this.closed(appId, openid, 'idle', undefined);
      }
    }
    return closed;
  }
}

/**
 * `wxkf_handoffs_total`: the one already in any of `registries` (the parts one process hosts share it: one
 * name, one series), else a new one registered in the first.
 */
export function handoffCounter(registries: Registry[]): Counter<'app_id' | 'change' | 'reason'> {
  const existing = registries.map((r) => r.getSingleMetric('wxkf_handoffs_total')).find(Boolean);
  if (existing) return existing as Counter<'app_id' | 'change' | 'reason'>;
  return new Counter({
    name: 'wxkf_handoffs_total',
    help: 'Handoffs to human agents opened and closed, by account, change (opened, closed) and reason (rule, handler, operator, ai, kf_create_session, kf_switch_session, kf_close_session, session_state, idle)',
    labelNames: ['app_id', 'change', 'reason'],
    registers: registries.slice(0, 1),
  });
}
