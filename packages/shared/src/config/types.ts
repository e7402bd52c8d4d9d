// What the services get from the configuration: the accounts and the per-part groups (index.ts builds them).
import type { RedisTarget } from '../redis/index.js';
import type { AccountType } from '../wechat/custom-message.js';

export type Security = 'any' | 'safe';
/** Whether an account keeps a handoff state: `auto` = when its rules can transfer, a handler runs, or it is an Official Account. */
export type HandoffSetting = 'auto' | 'on' | 'off';
/** Where access_tokens come from: `cgi-bin/stable_token` (normal mode) or `cgi-bin/token`. */
export type TokenSource = 'stable' | 'classic';

/**
 * One account served by this deployment: a Mini Program / Mini Game or Official Account, or a WeCom
 * customer-service corp (`wecom-kf`: `appId` is the CorpID, `appSecret` the 微信客服 secret).
 */
export interface AccountConfig {
  appId: string;
  appSecret: string;
  /** The Token configured in the console's message-push (or WeCom callback) settings. */
  token: string;
  /** The 43-character EncodingAESKey; needed for compat and safe mode, and always for `wecom-kf`. */
  aesKey?: string | undefined;
  type: AccountType;
  /** `safe` accepts only pushes with a verified Encrypt; the default for an account with an AES key. */
  security: Security;
  /** Reply rules for this account, overriding REPLY_RULES_FILE. */
  replyRules?: string | undefined;
  /** Handoff to human agents (see `@wx-kf/shared/handoff`); default `auto`. */
  handoff?: HandoffSetting | undefined;
  /** This account's model endpoint and limits, each overriding the AI_* variable (docs/ai.md). */
  ai?: AccountAi | undefined;
}

/** What an account may set for itself in the accounts file's `ai:` (the rest comes from the AI_* variables). */
export interface AccountAi {
  baseUrl?: string | undefined;
  model?: string | undefined;
  apiKey?: string | undefined;
  maxInFlight?: number | undefined;
  dailyTokens?: number | undefined;
}

/** The AI reply source's settings (AI_*): the endpoint, and the limits and context kept around it. */
export interface AiConfig {
  /** The OpenAI-compatible endpoint, e.g. `http://127.0.0.1:11434/v1`; unset = no account may use `ai`. */
  baseUrl?: string | undefined;
  /** The model to ask (a rule's `model` overrides it). */
  model?: string | undefined;
  /** Its bearer key; unset = no Authorization header (a local Ollama or vLLM). */
  apiKey?: string | undefined;
  /** Model calls in flight per account across every worker (a Redis semaphore). */
  maxInFlight: number;
  /** How long a model call may wait for its first byte, and between two streamed chunks. */
  timeoutMs: number;
  /** Retries of a call that failed with a timeout, a dropped connection, 429 or 5xx (with backoff). */
  maxRetries: number;
  /** Stream the answer (the first message goes out when its paragraph is complete). */
  stream: boolean;
  /** Model calls per user per hour; 0 = no limit. */
  userCallsPerHour: number;
  /** Tokens (in and out) per account per UTC day; 0 = no budget. */
  dailyTokens: number;
  /** What is kept per user for the model's context: entries (0 = none kept), their age, and how much is sent. */
  context: { entries: number; maxAgeMs: number; historyChars: number };
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
    /** WeCom's API origin (WECOM_API_BASE), for `wecom-kf` accounts, without a trailing slash. */
    wecomBase: string;
  };
  /** The WeCom customer-service pull (docs/wecom.md). */
  wecom: {
    /** A first pull (no cursor yet) records messages older than this in the timeline and answers none of them. */
    historyMaxAgeMs: number;
    /** Every this often each known open_kfid is pulled without a callback (0: never): what a lost callback left. */
    catchUpMs: number;
  };
  handoff: {
    /** A handoff with no message from the user for this long closes (WeChat stops forwarding after 30 min). */
    idleMs: number;
  };
  /** Per-user timeline caps: entries (0 = no timeline) and age in ms. */
  timeline: { entries: number; maxAgeMs: number };
  /** The AI reply source (rules `ai:`): model endpoint, limits, context. */
  ai: AiConfig;
  logLevel: string;
}
