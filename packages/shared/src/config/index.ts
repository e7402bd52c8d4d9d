import { existsSync } from 'node:fs';
import { z } from 'zod';
import type { RedisTarget } from '../redis/index.js';
import { checkAccounts, configuredAccounts } from './accounts.js';
import { ConfigError } from './errors.js';
import { redisTarget } from './redis-target.js';
import { withRenamedVariables, writtenName } from './renamed.js';
import { groupedConfig } from './roles.js';
import { envSchema, redisSchema } from './schema.js';
import { SECRET_VARIABLES, withSecretFiles } from './secret-files.js';
import type { AccountConfig, Config } from './types.js';

export { ConfigError, printConfigError } from './errors.js';
export { loadStructuredFile } from './file.js';
export { RENAMED_VARIABLES } from './renamed.js';
export { DEFAULT_WORKER_CONCURRENCY, MAX_TIMESTAMP_TOLERANCE_SECONDS } from './schema.js';
export { SECRET_VARIABLES } from './secret-files.js';
export type * from './types.js';

/** True when the environment names at least one WeChat account (otherwise `pnpm start` runs the demo). */
export function hasCredentials(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.WECHAT_APP_ID || env.WECHAT_ACCOUNTS_FILE);
}

/** One line per problem and per schema issue (`name: message`; a message never quotes the value). */
function configError(problems: string[], issues: readonly z.core.$ZodIssue[] = [], nameOf = (path: string) => path) {
  return new ConfigError([...problems, ...issues.map((i) => `${nameOf(i.path.join('.'))}: ${i.message}`)]);
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
    throw configError(problems, parsed.error?.issues, (name) => writtenName(name, renamed.oldNameOf));
  }
  const e = parsed.data;
  const redis = redisTarget(e, env, problems);
  const accounts = configuredAccounts(e, problems);
  checkAccounts(accounts, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return { config: groupedConfig(e, redis, accounts), warnings };
}

/** readConfig without its warnings: for tools and tests (a service logs them: see runService). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return readConfig(env).config;
}

/** Loads `.env` from the working directory into the environment, if present (variables already set win). */
export function loadDotEnv(file = '.env'): void {
  if (existsSync(file)) process.loadEnvFile(file);
}

/** The Redis target alone from REDIS_* (for tools that need only Redis: the queue CLI); throws ConfigError. */
export function redisFromEnv(env: NodeJS.ProcessEnv = process.env): RedisTarget {
  const problems: string[] = [];
  const parsed = z.object(redisSchema).safeParse(withSecretFiles(env, problems));
  if (!parsed.success || problems.length > 0) throw configError(problems, parsed.error?.issues);
  const target = redisTarget(parsed.data, env, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return target;
}

/** The ingress port from PORT (default 3000), for tools that talk to a local ingress without a full config. */
export function ingressPort(env: NodeJS.ProcessEnv = process.env): number {
  const problems: string[] = [];
  const parsed = envSchema.shape.PORT.safeParse(withSecretFiles(env, problems).PORT);
  if (problems.length > 0) throw new ConfigError(problems);
  if (!parsed.success) throw new ConfigError([`PORT: ${parsed.error.issues[0]?.message ?? 'invalid'}`]);
  return parsed.data;
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
