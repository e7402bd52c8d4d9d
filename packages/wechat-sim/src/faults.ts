import { isRecord } from './json-body.js';

/** What the simulator does instead of (or before) answering normally. */
export type Fault =
  | { errcode: number; errmsg?: string }
  /** `retryAfterMs`: sent as `retry-after` (seconds, rounded up) and `retry-after-ms` (the fake model's 429s). */
  | { http: number; retryAfterMs?: number }
  | { delayMs: number }
  | { drop: true }
  /** No answer until the client gives up (or the simulator closes). */
  | { hang: true }
  | 'ok';

export interface FaultRule {
  /** API path, e.g. `/cgi-bin/message/custom/send`. */
  path: string;
  /** Only this account's calls; all accounts when absent. */
  appId?: string;
  /** Played in order, one per call; when used up, calls answer normally. */
  script?: Fault[];
  /** Or: each call fails with this probability, picking one of `faults` (seeded, repeatable). */
  rate?: number;
  faults?: Fault[];
  seed?: number;
}

export interface LatencyRule {
  path?: string;
  appId?: string;
  /** A fixed delay, or a uniform draw in [minMs, maxMs]. */
  fixedMs?: number;
  minMs?: number;
  maxMs?: number;
  seed?: number;
}

/** mulberry32: a tiny seeded PRNG so that a "random" fault run can be replayed exactly. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface ActiveRule {
  rule: FaultRule;
  remaining: Fault[];
  random: () => number;
}

interface ActiveLatency {
  rule: LatencyRule;
  random: () => number;
}

const matches = (rule: { path?: string; appId?: string }, path: string, appId: string | undefined) =>
  (!rule.path || rule.path === path) && (!rule.appId || rule.appId === appId);

/** The fault and latency rules in force; the first matching rule with something to say decides. */
export class FaultPlan {
  private rules: ActiveRule[] = [];
  private latencies: ActiveLatency[] = [];

  add(rule: FaultRule): void {
    this.rules.push({ rule, remaining: [...(rule.script ?? [])], random: seededRandom(rule.seed ?? 1) });
  }

  addLatency(rule: LatencyRule): void {
    this.latencies.push({ rule, random: seededRandom(rule.seed ?? 1) });
  }

  clear(): void {
    this.rules = [];
    this.latencies = [];
  }

  /** The fault for this call, if any (consumes one step of a script). */
  next(path: string, appId: string | undefined): Fault | undefined {
    for (const active of this.rules) {
      if (!matches(active.rule, path, appId)) continue;
      if (active.remaining.length > 0) return active.remaining.shift();
      const { rate, faults } = active.rule;
      if (rate && faults?.length && active.random() < rate) {
        return faults[Math.floor(active.random() * faults.length)];
      }
    }
    return undefined;
  }

  /** Delay for this call in ms (0 when no latency rule matches). */
  latency(path: string, appId: string | undefined): number {
    const active = this.latencies.find((l) => matches(l.rule, path, appId));
    if (!active) return 0;
    const { fixedMs, minMs = 0, maxMs = minMs } = active.rule;
    return fixedMs ?? minMs + active.random() * (maxMs - minMs);
  }
}

const optional = (value: unknown, type: 'string' | 'number') => value === undefined || typeof value === type;

/** A fault as FaultRule documents it (what `POST /__sim/faults` accepts). */
export function isFault(value: unknown): value is Fault {
  if (value === 'ok') return true;
  if (!isRecord(value)) return false;
  if ('errcode' in value) return typeof value.errcode === 'number' && optional(value.errmsg, 'string');
  if ('http' in value) return typeof value.http === 'number' && optional(value.retryAfterMs, 'number');
  if ('delayMs' in value) return typeof value.delayMs === 'number';
  return value.drop === true || value.hang === true;
}

/** A fault rule with a path, as FaultRule documents it. */
export function isFaultRule(value: unknown): value is FaultRule {
  if (!isRecord(value) || typeof value.path !== 'string' || !optional(value.appId, 'string')) return false;
  const faults = (list: unknown) => list === undefined || (Array.isArray(list) && list.every(isFault));
  return (
    faults(value.script) && faults(value.faults) && optional(value.rate, 'number') && optional(value.seed, 'number')
  );
}

/** A latency rule as LatencyRule documents it. */
export function isLatencyRule(value: unknown): value is LatencyRule {
  if (!isRecord(value)) return false;
  const { path, appId, fixedMs, minMs, maxMs, seed } = value;
  return (
    [path, appId].every((v) => optional(v, 'string')) &&
    [fixedMs, minMs, maxMs, seed].every((v) => optional(v, 'number'))
  );
}
