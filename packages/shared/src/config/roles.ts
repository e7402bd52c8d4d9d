import type { z } from 'zod';
import type { RedisTarget } from '../redis/index.js';
import type { envSchema } from './schema.js';
import type { AccountConfig, Config, Listener } from './types.js';

/** The parsed environment as the Config the services read, grouped by the part that reads it. */
export function groupedConfig(e: z.output<typeof envSchema>, redis: RedisTarget, accounts: AccountConfig[]): Config {
  return {
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
    api: {
      base: e.WECHAT_API_BASE.replace(/\/+$/, ''),
      proxy: e.WECHAT_API_PROXY,
      tokenSource: e.TOKEN_SOURCE,
      wecomBase: e.WECOM_API_BASE.replace(/\/+$/, ''),
    },
    wecom: { historyMaxAgeMs: e.WECOM_HISTORY_MAX_AGE_SECONDS * 1000, catchUpMs: e.WECOM_CATCHUP_SECONDS * 1000 },
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
}

function listener(host: string, port: number | undefined): Listener | undefined {
  return port === undefined ? undefined : { host, port };
}
