import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import type { HostPort, RedisTarget } from '../redis/index.js';
import { MAX_SHARDS } from '../redis/keys.js';
import { isValidAesKey } from '../wechat/crypto.js';
import type { AccountType } from '../wechat/custom-message.js';
import { ConfigError } from './errors.js';
import { loadStructuredFile } from './file.js';

/**
 * The largest WECHAT_TIMESTAMP_TOLERANCE. A push is accepted up to this long after its timestamp and may first
 * have been stored this long before it, so the ingress must remember what it stored (DEDUP_TTL_MS, one hour) for
 * twice this plus the replicas' clock margin: else a replay inside the tolerance would count as a new push.
 */
export const MAX_TIMESTAMP_TOLERANCE_SECONDS = 1200;

export { ConfigError, printConfigError } from './errors.js';
export { loadStructuredFile } from './file.js';

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

export interface Config {
  /** Where Redis is (single, Sentinel or Cluster), its login, the shard count and the push durability. */
  redis: RedisTarget;
  host: string;
  port: number;
  apiBase: string;
  accounts: AccountConfig[];
  timestampToleranceSeconds: number;
  replyRulesFile?: string | undefined;
  handler?: string | undefined;
  tokenSource: TokenSource;
  workerConcurrency: number;
  admin: {
    host: string;
    port: number;
    user: string;
    password?: string | undefined;
    apiKey?: string | undefined;
    /** Proxies whose X-Forwarded-For the admin listener believes (addresses, CIDR ranges); unset = none. */
    trustProxy?: string[] | undefined;
  };
  workerMetricsPort?: number | undefined;
  /** Address of a worker's metrics listener (loopback unless told otherwise). */
  workerMetricsHost: string;
  /** An ingress's own `/metrics` listener (never on the public port); unset = none. */
  ingressMetrics?: { host: string; port: number } | undefined;
  /** How long a worker holds a job before others may take it over (stalled-job recovery after a crash). */
  workerLockMs: number;
  /** HTTP(S) proxy for calls to the WeChat API (an egress IP on the API whitelist). */
  apiProxy?: string | undefined;
  logLevel: string;
  /** Per-user timeline caps: entries (0 = no timeline) and age in ms. */
  timeline: { entries: number; maxAgeMs: number };
  /** Planning that takes longer than this shows "typing…" to the user (0 = never). */
  typingAfterMs: number;
  /** A handoff with no message from the user for this long closes (WeChat stops forwarding after 30 min). */
  handoffIdleMs: number;
}

/** Jobs a worker process runs at once when WORKER_CONCURRENCY is unset. */
export const DEFAULT_WORKER_CONCURRENCY = 50;

const port = z.coerce.number().int().min(0).max(65535);
const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => (v === '' ? undefined : v), schema.optional()) as unknown as z.ZodOptional<T>;
const accountType = z.enum(['miniprogram', 'officialaccount']);
const security = z.enum(['any', 'safe']);
const handoff = z.enum(['auto', 'on', 'off']);
const appId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be the AppID (letters, digits, - or _)');
const token = z.string().regex(/^[A-Za-z0-9]{3,32}$/, 'must be 3 to 32 letters or digits (the console Token)');
const aesKey = z.string().refine(isValidAesKey, 'must be the 43-character EncodingAESKey ([A-Za-z0-9])');

/** `host:port,host:port,…` (IPv6 hosts in brackets). */
const hostPorts = z
  .string()
  .transform((v) => v.split(',').map((s) => s.trim()))
  .pipe(
    z.array(
      z
        .string()
        .regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):\d{1,5}$/, 'must be host:port,host:port,… (IPv6 as [addr]:port)')
        .transform((hp): HostPort => {
          const at = hp.lastIndexOf(':');
          return { host: hp.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(hp.slice(at + 1)) };
        }),
    ),
  );
const flag = z.enum(['true', 'false', 'yes', 'no', '1', '0']).transform((v) => ['true', '1', 'yes'].includes(v));

/** Shards on a cluster when REDIS_SHARDS is unset: spreads many users over every primary of a small cluster. */
const DEFAULT_CLUSTER_SHARDS = 16;

const redisSchema = {
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\/.+/, 'must be a redis:// or rediss:// URL')
    .default('redis://127.0.0.1:6379'),
  REDIS_CLUSTER_NODES: optional(hostPorts),
  REDIS_SENTINELS: optional(hostPorts),
  REDIS_SENTINEL_NAME: optional(z.string().min(1)),
  REDIS_USERNAME: optional(z.string().min(1)),
  REDIS_PASSWORD: optional(z.string().min(1)),
  REDIS_SENTINEL_PASSWORD: optional(z.string().min(1)),
  REDIS_TLS: optional(flag),
  REDIS_TLS_CA_FILE: optional(z.string().min(1)),
  REDIS_SHARDS: optional(z.coerce.number().int().min(1).max(MAX_SHARDS)),
  REDIS_DURABILITY: z.enum(['local', 'replicated']).default('local'),
};

const envSchema = z.object({
  ...redisSchema,
  HOST: z.string().min(1).default('0.0.0.0'),
  PORT: port.default(3000),
  WECHAT_API_BASE: z.url({ protocol: /^https?$/ }).default('https://api.weixin.qq.com'),
  WECHAT_APP_ID: optional(appId),
  WECHAT_APP_SECRET: optional(z.string().min(1)),
  WECHAT_TOKEN: optional(token),
  WECHAT_AES_KEY: optional(aesKey),
  WECHAT_ACCOUNT_TYPE: accountType.default('miniprogram'),
  WECHAT_ACCOUNTS_FILE: optional(z.string()),
  WECHAT_SECURITY: optional(security),
  WECHAT_TIMESTAMP_TOLERANCE: z.coerce
    .number()
    .int()
    .min(1, { error: 'must be at least 1 (0 no longer turns the check off: see docs/configuration.md)' })
    .max(MAX_TIMESTAMP_TOLERANCE_SECONDS, {
      error: `must be at most ${MAX_TIMESTAMP_TOLERANCE_SECONDS} (how long a stored push is remembered bounds it)`,
    })
    .default(300),
  REPLY_RULES_FILE: optional(z.string()),
  WECHAT_HANDLER: optional(z.string()),
  TOKEN_SOURCE: z.enum(['stable', 'classic']).default('stable'),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(DEFAULT_WORKER_CONCURRENCY),
  ADMIN_HOST: z.string().min(1).default('127.0.0.1'),
  ADMIN_PORT: port.default(3001),
  ADMIN_USER: z.string().min(1).default('admin'),
  ADMIN_PASSWORD: optional(z.string().min(8, 'must be at least 8 characters')),
  ADMIN_API_KEY: optional(z.string().min(16, 'must be at least 16 characters')),
  ADMIN_TRUST_PROXY: optional(
    z
      .string()
      .transform((s) => s.split(',').map((p) => p.trim()))
      .pipe(
        z.array(
          z
            .string()
            .regex(
              /^(?:loopback|linklocal|uniquelocal|[0-9A-Fa-f.:]+(?:\/\d{1,3})?)$/,
              'must be addresses or CIDR ranges of your proxies, comma-separated',
            ),
        ),
      ),
  ),
  WORKER_METRICS_PORT: optional(port),
  WORKER_METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  INGRESS_METRICS_PORT: optional(port),
  INGRESS_METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  WORKER_LOCK_DURATION_MS: z.coerce.number().int().min(1000).default(30_000),
  WECHAT_API_PROXY: optional(z.url({ protocol: /^https?$/ })),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  TIMELINE_ENTRIES: z.coerce.number().int().min(0).max(10_000).default(200),
  TIMELINE_MAX_AGE_HOURS: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 90)
    .default(168),
  TYPING_AFTER_MS: z.coerce.number().int().min(0).max(14_000).default(1000),
  WECHAT_HANDOFF: handoff.default('auto'),
  HANDOFF_IDLE_TIMEOUT: z.coerce.number().int().min(1).max(86_400).default(1800),
});

const accountsFileSchema = z.strictObject({
  accounts: z
    .array(
      z.strictObject({
        appId,
        appSecret: z.string().min(1),
        token,
        aesKey: aesKey.optional(),
        type: accountType.optional(),
        security: security.optional(),
        replyRules: z.string().optional(),
        handoff: handoff.optional(),
      }),
    )
    .min(1, 'must list at least one account'),
});

/** Secrets that may instead be read from a file named by `<NAME>_FILE` (compose/Kubernetes secrets). */
export const SECRET_VARIABLES = [
  'REDIS_URL',
  'REDIS_PASSWORD',
  'REDIS_SENTINEL_PASSWORD',
  'WECHAT_APP_SECRET',
  'WECHAT_TOKEN',
  'WECHAT_AES_KEY',
  'ADMIN_PASSWORD',
  'ADMIN_API_KEY',
] as const;

/** The environment with every `<NAME>_FILE` replaced by the file's content (trailing newline trimmed). */
function withSecretFiles(env: NodeJS.ProcessEnv, problems: string[]): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const name of SECRET_VARIABLES) {
    const file = env[`${name}_FILE`];
    if (!file) continue;
    if (env[name]) {
      problems.push(`${name}_FILE: set ${name} or ${name}_FILE, not both`);
      continue;
    }
    try {
      out[name] = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      problems.push(`${name}_FILE ${file}: cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  return out;
}

/** True when the environment names at least one WeChat account (otherwise `pnpm start` runs the demo). */
export function hasCredentials(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.WECHAT_APP_ID || env.WECHAT_ACCOUNTS_FILE);
}

/** Parses and checks the whole configuration once; throws ConfigError with one line per problem. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const parsed = envSchema.safeParse(withSecretFiles(env, problems));
  if (!parsed.success || problems.length > 0) {
    // Issue messages never quote the value: a secret must not reach the terminal or a log.
    throw new ConfigError([
      ...problems,
      ...(parsed.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? []),
    ]);
  }
  const e = parsed.data;
  const redis = redisTarget(e, env, problems);
  const accounts: AccountConfig[] = [];

  if (e.WECHAT_APP_ID) {
    if (!e.WECHAT_APP_SECRET) problems.push('WECHAT_APP_SECRET: required with WECHAT_APP_ID');
    if (!e.WECHAT_TOKEN) problems.push('WECHAT_TOKEN: required with WECHAT_APP_ID');
    accounts.push({
      appId: e.WECHAT_APP_ID,
      appSecret: e.WECHAT_APP_SECRET ?? '',
      token: e.WECHAT_TOKEN ?? '',
      aesKey: e.WECHAT_AES_KEY,
      type: e.WECHAT_ACCOUNT_TYPE,
      security: e.WECHAT_SECURITY ?? (e.WECHAT_AES_KEY ? 'safe' : 'any'),
      handoff: e.WECHAT_HANDOFF,
    });
  }
  if (e.WECHAT_ACCOUNTS_FILE) {
    try {
      const file = loadStructuredFile(e.WECHAT_ACCOUNTS_FILE, accountsFileSchema, 'WECHAT_ACCOUNTS_FILE');
      for (const a of file.accounts) {
        accounts.push({
          ...a,
          type: a.type ?? e.WECHAT_ACCOUNT_TYPE,
          security: a.security ?? e.WECHAT_SECURITY ?? (a.aesKey ? 'safe' : 'any'),
          handoff: a.handoff ?? e.WECHAT_HANDOFF,
        });
      }
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems.push(...error.problems);
    }
  }
  if (accounts.length === 0 && problems.length === 0) {
    problems.push('no WeChat account: set WECHAT_APP_ID, WECHAT_APP_SECRET and WECHAT_TOKEN, or WECHAT_ACCOUNTS_FILE');
  }
  const seen = new Set<string>();
  for (const account of accounts) {
    if (seen.has(account.appId)) problems.push(`account ${account.appId}: configured twice`);
    seen.add(account.appId);
    if (account.security === 'safe' && !account.aesKey) {
      problems.push(`account ${account.appId}: security "safe" needs an EncodingAESKey (aesKey / WECHAT_AES_KEY)`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  return {
    redis,
    host: e.HOST,
    port: e.PORT,
    apiBase: e.WECHAT_API_BASE.replace(/\/+$/, ''),
    accounts,
    timestampToleranceSeconds: e.WECHAT_TIMESTAMP_TOLERANCE,
    replyRulesFile: e.REPLY_RULES_FILE,
    handler: e.WECHAT_HANDLER,
    tokenSource: e.TOKEN_SOURCE,
    workerConcurrency: e.WORKER_CONCURRENCY,
    admin: {
      host: e.ADMIN_HOST,
      port: e.ADMIN_PORT,
      user: e.ADMIN_USER,
      password: e.ADMIN_PASSWORD,
      apiKey: e.ADMIN_API_KEY,
      trustProxy: e.ADMIN_TRUST_PROXY,
    },
    workerMetricsPort: e.WORKER_METRICS_PORT,
    workerMetricsHost: e.WORKER_METRICS_HOST,
    ingressMetrics:
      e.INGRESS_METRICS_PORT === undefined ? undefined : { host: e.INGRESS_METRICS_HOST, port: e.INGRESS_METRICS_PORT },
    workerLockMs: e.WORKER_LOCK_DURATION_MS,
    apiProxy: e.WECHAT_API_PROXY,
    logLevel: e.LOG_LEVEL,
    timeline: { entries: e.TIMELINE_ENTRIES, maxAgeMs: e.TIMELINE_MAX_AGE_HOURS * 3600_000 },
    typingAfterMs: e.TYPING_AFTER_MS,
    handoffIdleMs: e.HANDOFF_IDLE_TIMEOUT * 1000,
  };
}

/** Loads `.env` from the working directory into the environment, if present (variables already set win). */
export function loadDotEnv(file = '.env'): void {
  if (existsSync(file)) process.loadEnvFile(file);
}

type RedisEnv = z.output<z.ZodObject<typeof redisSchema>>;

/** The connection choice: REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS (+ name), never two of them. */
function redisTarget(e: RedisEnv, raw: NodeJS.ProcessEnv, problems: string[]): RedisTarget {
  const common = {
    username: e.REDIS_USERNAME,
    password: e.REDIS_PASSWORD,
    tls: e.REDIS_TLS || e.REDIS_TLS_CA_FILE ? { ca: e.REDIS_TLS_CA_FILE } : undefined,
    durability: e.REDIS_DURABILITY,
  };
  const urlSet = Boolean(raw.REDIS_URL || raw.REDIS_URL_FILE);
  if (e.REDIS_CLUSTER_NODES && e.REDIS_SENTINELS) {
    problems.push('REDIS_CLUSTER_NODES: set REDIS_CLUSTER_NODES or REDIS_SENTINELS, not both');
  }
  if ((e.REDIS_CLUSTER_NODES || e.REDIS_SENTINELS) && urlSet) {
    problems.push('REDIS_URL: set REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS, only one of them');
  }
  if (e.REDIS_SENTINELS && !e.REDIS_SENTINEL_NAME) problems.push('REDIS_SENTINEL_NAME: required with REDIS_SENTINELS');
  if (e.REDIS_SENTINEL_NAME && !e.REDIS_SENTINELS) problems.push('REDIS_SENTINELS: required with REDIS_SENTINEL_NAME');
  if (e.REDIS_SENTINEL_PASSWORD && !e.REDIS_SENTINELS) {
    problems.push('REDIS_SENTINEL_PASSWORD: only with REDIS_SENTINELS');
  }
  if (e.REDIS_CLUSTER_NODES) {
    return {
      kind: 'cluster',
      nodes: e.REDIS_CLUSTER_NODES,
      shards: e.REDIS_SHARDS ?? DEFAULT_CLUSTER_SHARDS,
      ...common,
    };
  }
  if (e.REDIS_SENTINELS) {
    return {
      kind: 'sentinel',
      sentinels: e.REDIS_SENTINELS,
      name: e.REDIS_SENTINEL_NAME ?? '',
      sentinelPassword: e.REDIS_SENTINEL_PASSWORD,
      shards: e.REDIS_SHARDS ?? 1,
      ...common,
    };
  }
  return { kind: 'single', url: e.REDIS_URL, shards: e.REDIS_SHARDS ?? 1, ...common };
}

/** The Redis target alone from REDIS_* (for tools that need only Redis: the queue CLI); throws ConfigError. */
export function redisFromEnv(env: NodeJS.ProcessEnv = process.env): RedisTarget {
  const problems: string[] = [];
  const parsed = z.object(redisSchema).safeParse(withSecretFiles(env, problems));
  if (!parsed.success || problems.length > 0) {
    throw new ConfigError([
      ...problems,
      ...(parsed.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? []),
    ]);
  }
  const target = redisTarget(parsed.data, env, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return target;
}

function single<K extends 'PORT'>(name: K, env: NodeJS.ProcessEnv): z.output<(typeof envSchema.shape)[K]> {
  const problems: string[] = [];
  const parsed = envSchema.shape[name].safeParse(withSecretFiles(env, problems)[name]);
  if (problems.length > 0) throw new ConfigError(problems);
  if (!parsed.success) throw new ConfigError([`${name}: ${parsed.error.issues[0]?.message ?? 'invalid'}`]);
  return parsed.data as z.output<(typeof envSchema.shape)[K]>;
}

/** The ingress port from PORT (default 3000), for tools that talk to a local ingress without a full config. */
export function ingressPort(env: NodeJS.ProcessEnv = process.env): number {
  return single('PORT', env);
}

/** The environment variables that configure one account (the inverse of loadConfig's single-account form). */
export function accountEnv(
  account: Pick<AccountConfig, 'appId' | 'appSecret' | 'token' | 'aesKey'> & {
    type?: AccountConfig['type'];
  },
): NodeJS.ProcessEnv {
  return {
    WECHAT_APP_ID: account.appId,
    WECHAT_APP_SECRET: account.appSecret,
    WECHAT_TOKEN: account.token,
    ...(account.aesKey ? { WECHAT_AES_KEY: account.aesKey } : {}),
    ...(account.type ? { WECHAT_ACCOUNT_TYPE: account.type } : {}),
  };
}

/** Every environment variable the configuration reads (docs/configuration.md and .env.example document each). */
export const CONFIG_VARIABLES: readonly string[] = [
  ...Object.keys(envSchema.shape),
  ...SECRET_VARIABLES.map((name) => `${name}_FILE`),
];
