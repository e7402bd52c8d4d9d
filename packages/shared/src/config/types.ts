// What the services get from the configuration: the accounts and the per-part groups (index.ts builds them).
import type { RedisTarget } from '../redis/index.js';
import type { AccountType } from '../wechat/custom-message.js';

export type Security = 'any' | 'safe';
/** Whether an account keeps a handoff state: `auto` = when its rules can transfer, a handler runs, or it is an Official Account. */
export type HandoffSetting = 'auto' | 'on' | 'off';
/** Where access_tokens come from: `cgi-bin/stable_token` (normal mode) or `cgi-bin/token`. */
export type TokenSource = 'stable' | 'classic';

/** One WeChat account (Mini Program / Mini Game or Official Account) served by this deployment. */
export interface AccountConfig {
  appId: string;
  appSecret: string;
  /** The Token configured in the console's message-push settings. */
  token: string;
  /** The 43-character EncodingAESKey; needed for compat and safe mode. */
  aesKey?: string | undefined;
  type: AccountType;
  /** `safe` accepts only pushes with a verified Encrypt; the default for an account with an AES key. */
  security: Security;
  /** Reply rules for this account, overriding REPLY_RULES_FILE. */
  replyRules?: string | undefined;
  /** Handoff to human agents (see `@wx-kf/shared/handoff`); default `auto`. */
  handoff?: HandoffSetting | undefined;
}

/** A listener's address. */
export interface Listener {
  host: string;
  port: number;
}

/**
 * The whole configuration, grouped by the part that reads it. `redis` and `accounts` (and the reply settings
 * beside them) are read by every part.
 */
export interface Config {
  /** Where Redis is (single, Sentinel or Cluster), its login, the shard count and the push durability. */
  redis: RedisTarget;
  accounts: AccountConfig[];
  /** Reply rules for the accounts without their own `replyRules` (REPLY_RULES_FILE). */
  replyRulesFile?: string | undefined;
  /** A JS module whose default export decides the replies (WECHAT_HANDLER). */
  handler?: string | undefined;
  /** The public listener WeChat pushes to. */
  ingress: Listener & {
    /** How far a push's (or a URL check's) timestamp may be from our clock. */
    timestampToleranceSeconds: number;
    /** An ingress's own `/metrics` listener (never on the public port); unset = none. */
    metrics?: Listener | undefined;
  };
  /** The workers that plan replies and send them. */
  worker: {
    /** Jobs one process runs at once. */
    concurrency: number;
    /** How long a worker holds a job before others may take it over (stalled-job recovery after a crash). */
    lockMs: number;
    /** Planning that takes longer than this shows "typing…" to the user (0 = never). */
    typingAfterMs: number;
    /** A worker's own `/metrics` listener (loopback unless told otherwise); unset = none. */
    metrics?: Listener | undefined;
  };
  /** The admin listener (dashboard, `/metrics`, send API). */
  admin: Listener & {
    user: string;
    password?: string | undefined;
    apiKey?: string | undefined;
    /** Proxies whose X-Forwarded-For the admin listener believes (addresses, CIDR ranges); unset = none. */
    trustProxy?: string[] | undefined;
  };
  /** The WeChat API the worker and the admin call. */
  api: {
    /** Its origin, without a trailing slash. */
    base: string;
    /** HTTP(S) proxy for the calls (an egress IP on the API whitelist). */
    proxy?: string | undefined;
    tokenSource: TokenSource;
  };
  handoff: {
    /** A handoff with no message from the user for this long closes (WeChat stops forwarding after 30 min). */
    idleMs: number;
  };
  /** Per-user timeline caps: entries (0 = no timeline) and age in ms. */
  timeline: { entries: number; maxAgeMs: number };
  logLevel: string;
}
