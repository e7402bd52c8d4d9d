import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import type { RedisTarget } from '../redis/index.js';
import { ConfigError } from './errors.js';
import { loadStructuredFile } from './file.js';
import { withRenamedVariables, writtenName } from './renamed.js';
import { accountsFileSchema, DEFAULT_CLUSTER_SHARDS, envSchema, redisSchema } from './schema.js';
import type { AccountConfig, Config, Listener } from './types.js';

export { ConfigError, printConfigError } from './errors.js';
export { loadStructuredFile } from './file.js';
export { RENAMED_VARIABLES } from './renamed.js';
export { DEFAULT_WORKER_CONCURRENCY, MAX_TIMESTAMP_TOLERANCE_SECONDS } from './schema.js';
export type * from './types.js';

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
  'AI_API_KEY',
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

/**
 * Parses and checks the whole configuration once; throws ConfigError with one line per problem. `warnings` are
 * lines to log at start (an old variable name still read: RENAMED_VARIABLES).
 */
export function readConfig(env: NodeJS.ProcessEnv = process.env): { config: Config; warnings: string[] } {
  const problems: string[] = [];
  const warnings: string[] = [];
  const renamed = withRenamedVariables(env, problems, warnings);
  const parsed = envSchema.safeParse(withSecretFiles(renamed.env, problems));
  if (!parsed.success || problems.length > 0) {
    // Issue messages never quote the value: a secret must not reach the terminal or a log.
    throw new ConfigError([
      ...problems,
      ...(parsed.error?.issues.map((i) => `${writtenName(i.path.join('.'), renamed.oldNameOf)}: ${i.message}`) ?? []),
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
          ...(a.ai ? { ai: { ...a.ai, baseUrl: a.ai.baseUrl?.replace(/\/+$/, '') } } : {}),
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
  // A signature is sha1(token, timestamp, nonce): with one Token, one account's captured signature passes the
  // other's check too, and carries any body to it if it takes plaintext. Such an account needs its own Token.
  const tokens = new Map<string, AccountConfig>();
  for (const account of accounts) {
    if (seen.has(account.appId)) problems.push(`account ${account.appId}: configured twice`);
    seen.add(account.appId);
    const other = tokens.get(account.token);
    if (other && other.appId !== account.appId && (account.security === 'any' || other.security === 'any')) {
      problems.push(
        `account ${account.appId}: has the same Token as ${other.appId}, and one of them takes plaintext pushes; give each its own Token`,
      );
    }
    tokens.set(account.token, account);
    if (account.security === 'safe' && !account.aesKey) {
      problems.push(`account ${account.appId}: security "safe" needs an EncodingAESKey (aesKey / WECHAT_AES_KEY)`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const config: Config = {
    redis,
    accounts,
    replyRulesFile: e.REPLY_RULES_FILE,
    handler: e.WECHAT_HANDLER,
    ingress: {
      host: e.HOST,
      port: e.PORT,
      timestampToleranceSeconds: e.WECHAT_TIMESTAMP_TOLERANCE_SECONDS,
      metrics: listener(e.INGRESS_METRICS_HOST, e.INGRESS_METRICS_PORT),
    },
    worker: {
      concurrency: e.WORKER_CONCURRENCY,
      lockMs: e.WORKER_LOCK_DURATION_MS,
      typingAfterMs: e.TYPING_AFTER_MS,
      metrics: listener(e.WORKER_METRICS_HOST, e.WORKER_METRICS_PORT),
    },
    admin: {
      host: e.ADMIN_HOST,
      port: e.ADMIN_PORT,
      user: e.ADMIN_USER,
      password: e.ADMIN_PASSWORD,
      apiKey: e.ADMIN_API_KEY,
      trustProxy: e.ADMIN_TRUST_PROXY,
    },
    api: { base: e.WECHAT_API_BASE.replace(/\/+$/, ''), proxy: e.WECHAT_API_PROXY, tokenSource: e.TOKEN_SOURCE },
    handoff: { idleMs: e.HANDOFF_IDLE_TIMEOUT_SECONDS * 1000 },
    timeline: { entries: e.TIMELINE_ENTRIES, maxAgeMs: e.TIMELINE_MAX_AGE_HOURS * 3600_000 },
    ai: {
      baseUrl: e.AI_BASE_URL?.replace(/\/+$/, ''),
      model: e.AI_MODEL,
      apiKey: e.AI_API_KEY,
      maxInFlight: e.AI_MAX_IN_FLIGHT,
      timeoutMs: e.AI_TIMEOUT_MS,
      maxRetries: e.AI_MAX_RETRIES,
      stream: e.AI_STREAM,
      userCallsPerHour: e.AI_USER_CALLS_PER_HOUR,
      dailyTokens: e.AI_DAILY_TOKENS,
      context: {
        entries: e.AI_CONTEXT_ENTRIES,
        maxAgeMs: e.AI_CONTEXT_MAX_AGE_HOURS * 3600_000,
        historyChars: e.AI_HISTORY_CHARS,
      },
    },
    logLevel: e.LOG_LEVEL,
  };
  return { config, warnings };
}

/** readConfig without its warnings: for tools and tests (a service logs them: see runService). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return readConfig(env).config;
}

function listener(host: string, port: number | undefined): Listener | undefined {
  return port === undefined ? undefined : { host, port };
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
