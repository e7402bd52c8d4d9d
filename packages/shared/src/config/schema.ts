// The environment's schema: every variable the services read, its type, bounds and default. index.ts turns the
// parsed values into the Config the services use.
import { z } from 'zod';
import type { HostPort } from '../redis/index.js';
import { MAX_SHARDS } from '../redis/keys.js';
import { isValidAesKey } from '../wechat/crypto.js';

/**
 * The largest WECHAT_TIMESTAMP_TOLERANCE_SECONDS. A push is accepted up to this long after its timestamp and may first
 * have been stored this long before it, so the ingress must remember what it stored (DEDUP_TTL_MS, one hour) for
 * twice this plus the replicas' clock margin: else a replay inside the tolerance would count as a new push.
 */
export const MAX_TIMESTAMP_TOLERANCE_SECONDS = 1200;

/** Jobs a worker process runs at once when WORKER_CONCURRENCY is unset. */
export const DEFAULT_WORKER_CONCURRENCY = 50;

const port = z.coerce.number().int().min(0).max(65535);
const optional = <T extends z.ZodType>(schema: T) => z.preprocess((v) => (v === '' ? undefined : v), schema.optional());
const accountType = z.enum(['miniprogram', 'officialaccount']);
/** An accounts-file entry may also be a WeCom customer-service corp (微信客服), with its CorpID as `appId`. */
const fileAccountType = z.enum(['miniprogram', 'officialaccount', 'wecom-kf']);
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
export const DEFAULT_CLUSTER_SHARDS = 16;

export const redisSchema = {
  // Empty (`REDIS_URL=` in a .env) counts as unset: switching to a cluster or Sentinel needs no deleted line.
  REDIS_URL: z.preprocess(
    (v) => (v === '' ? undefined : v),
    z
      .string()
      .regex(/^rediss?:\/\/.+/, 'must be a redis:// or rediss:// URL')
      .default('redis://127.0.0.1:6379'),
  ),
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

/** A language model endpoint's origin and path prefix (`…/v1`), as the OpenAI client takes it. */
const aiBaseUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL, e.g. http://127.0.0.1:11434/v1' });
const positive = (max: number) => z.coerce.number().int().min(1).max(max);

/** The AI reply source (docs/ai.md): the model endpoint and the limits around it. */
export const aiSchema = {
  AI_BASE_URL: optional(aiBaseUrl),
  AI_MODEL: optional(z.string().min(1).max(200)),
  AI_API_KEY: optional(z.string().min(1)),
  AI_MAX_IN_FLIGHT: positive(1000).default(4),
  AI_TIMEOUT_MS: z.coerce.number().int().min(1000).max(600_000).default(30_000),
  AI_MAX_RETRIES: z.coerce.number().int().min(0).max(10).default(2),
  AI_STREAM: flag.default(true),
  AI_USER_CALLS_PER_HOUR: z.coerce.number().int().min(0).max(100_000).default(30),
  AI_DAILY_TOKENS: z.coerce.number().int().min(0).default(0),
  AI_CONTEXT_ENTRIES: z.coerce.number().int().min(0).max(200).default(20),
  AI_CONTEXT_MAX_AGE_HOURS: positive(24 * 90).default(24),
  AI_HISTORY_CHARS: z.coerce.number().int().min(0).max(200_000).default(4000),
};

/**
 * The standard OpenTelemetry variables wx-kf relies on, checked like the others (the SDK reads them, and more:
 * docs/configuration.md). Setting an endpoint or an exporter turns tracing on (tracing/index.ts).
 */
const otlpEndpoint = z.url({
  protocol: /^https?$/,
  error: 'must be an http:// or https:// URL (e.g. http://jaeger:4318)',
});
export const tracingSchema = {
  OTEL_EXPORTER_OTLP_ENDPOINT: optional(otlpEndpoint),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: optional(otlpEndpoint),
  OTEL_EXPORTER_OTLP_PROTOCOL: optional(z.enum(['http/protobuf', 'http/json', 'grpc'])),
  OTEL_TRACES_EXPORTER: optional(
    z
      .string()
      .regex(
        /^\s*(otlp|console|zipkin|none)\s*(,\s*(otlp|console|zipkin|none)\s*)*$/,
        'must be otlp, console, zipkin or none',
      ),
  ),
  OTEL_SERVICE_NAME: optional(z.string().min(1)),
  OTEL_SDK_DISABLED: optional(z.string().regex(/^(true|false)$/i, 'must be true or false')),
};

/** Every variable the configuration reads (a duration's name says its unit: _MS, _SECONDS, _HOURS). */
export const envSchema = z.object({
  ...redisSchema,
  ...tracingSchema,
  HOST: z.string().min(1).default('0.0.0.0'),
  PORT: port.default(3000),
  WECHAT_API_BASE: z.url({ protocol: /^https?$/ }).default('https://api.weixin.qq.com'),
  WECOM_API_BASE: z.url({ protocol: /^https?$/ }).default('https://qyapi.weixin.qq.com'),
  WECOM_HISTORY_MAX_AGE_SECONDS: z.coerce
    .number()
    .int()
    .min(0)
    .max(3 * 86_400)
    .default(300),
  WECOM_CATCHUP_SECONDS: z.coerce.number().int().min(0).max(86_400).default(300),
  WECHAT_APP_ID: optional(appId),
  WECHAT_APP_SECRET: optional(z.string().min(1)),
  WECHAT_TOKEN: optional(token),
  WECHAT_AES_KEY: optional(aesKey),
  WECHAT_ACCOUNT_TYPE: accountType.default('miniprogram'),
  WECHAT_ACCOUNTS_FILE: optional(z.string()),
  WECHAT_SECURITY: optional(security),
  WECHAT_TIMESTAMP_TOLERANCE_SECONDS: z.coerce
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
  HANDOFF_IDLE_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(86_400).default(1800),
  ...aiSchema,
});

/** An account's own model endpoint and limits in the accounts file (each overrides the AI_* variable). */
const accountAi = z.strictObject({
  baseUrl: aiBaseUrl.optional(),
  model: z.string().min(1).max(200).optional(),
  apiKey: z.string().min(1).optional(),
  maxInFlight: positive(1000).optional(),
  dailyTokens: z.number().int().min(0).optional(),
});

export const accountsFileSchema = z.strictObject({
  accounts: z
    .array(
      z.strictObject({
        appId,
        appSecret: z.string().min(1),
        token,
        aesKey: aesKey.optional(),
        type: fileAccountType.optional(),
        security: security.optional(),
        replyRules: z.string().optional(),
        handoff: handoff.optional(),
        ai: accountAi.optional(),
      }),
    )
    .min(1, 'must list at least one account'),
});
