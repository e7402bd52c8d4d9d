import { aiAccounts } from '@wx-kf/shared/ai';
import { NotifyClient, TokenManager, WeChatClient, WeChatHttp } from '@wx-kf/shared/api';
import { Channels, WeChatPushChannel } from '@wx-kf/shared/channel';
import type { AccountConfig, Config } from '@wx-kf/shared/config';
import { Conversations } from '@wx-kf/shared/conversation';
import { Handoffs, handoffAccounts } from '@wx-kf/shared/handoff';
import type { Logger } from '@wx-kf/shared/log';
import { createRedis, type RedisClient } from '@wx-kf/shared/redis';
import { loadAccountRules, type ReplyRules } from '@wx-kf/shared/rules';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { WorkerMetrics } from './metrics.js';
import type { WorkerHandoff } from './processors/handoff.js';
import { notificationProcessor } from './processors/notify.js';
import { aiParts } from './replies/ai-reply.js';
import { loadHandler, type MessageHandler } from './replies/handler.js';
import { type WeComParts, wecomParts } from './wecom-parts.js';
import type { WorkerStartOptions } from './worker.js';

/** What every shard's workers share: the accounts' rules, the connections, the WeChat client, the users' state. */
export interface WorkerParts {
  config: Config;
  logger: Logger;
  options: WorkerStartOptions;
  accounts: Map<string, AccountConfig>;
  rules: Map<string, ReplyRules>;
  aiSettings: ReturnType<typeof aiAccounts>;
  handler: MessageHandler | undefined;
  registry: Registry;
  metrics: WorkerMetrics;
  /** The workers' blocking connection, and the one for every other command. */
  connection: RedisClient;
  redis: RedisClient;
  http: WeChatHttp;
  tokens: TokenManager;
  wechat: WeChatClient;
  /** Each account's channel: WeChat's push channel, or WeCom's pull channel for the wecom-kf accounts. */
  channels: Channels;
  /** The WeCom pull channel's parts, when a wecom-kf account is configured. */
  wecom: WeComParts | undefined;
  handoff: WorkerHandoff;
  conversations: Conversations;
  ai: ReturnType<typeof aiParts>;
  /** Subscribe and template messages: outbound jobs named `notify`, with the user's grants (processors/notify.ts). */
  notify: ReturnType<typeof notificationProcessor>;
}

/** The configuration's parts, built once for the process. */
export async function buildParts(config: Config, logger: Logger, options: WorkerStartOptions): Promise<WorkerParts> {
  const accounts = new Map<string, AccountConfig>(config.accounts.map((a) => [a.appId, a]));
  const rules = loadAccountRules(config);
  // Every account whose rules answer with `ai` has an endpoint and a model, or the start stops here.
  const aiSettings = aiAccounts(config, rules);
  const handler = config.handler ? await loadHandler(config.handler) : undefined;

  const registry = options.registry ?? new Registry();
  collectDefaultMetrics({ register: registry });
  const metrics = new WorkerMetrics(registry);

  const connection = createRedis(config.redis, 'worker', logger);
  const redis = createRedis(config.redis, 'client', logger);
  const http = new WeChatHttp({ baseUrl: config.api.base, proxy: config.api.proxy });
  const tokens = new TokenManager({
    redis,
    http,
    accounts: config.accounts,
    source: config.api.tokenSource,
    logger,
    onRequest: (appId, result) => metrics.tokenRequests.inc({ app_id: appId, result }),
    ...options.tokenOptions,
  });
  const wechat = new WeChatClient(http, tokens, redis);
  const wecom = wecomParts(config, redis, logger, metrics, options.tokenOptions);
  const channels = new Channels(config.accounts, new WeChatPushChannel(wechat), wecom?.channel);
  const handoff: WorkerHandoff = {
    accounts: handoffAccounts(config, rules),
    state: new Handoffs({
      redis,
      idleMs: config.handoff.idleMs,
      logger,
      onChange: (change, appId, reason) => metrics.handoffs.inc({ app_id: appId, change, reason }),
    }),
  };
  // The AI context is kept for the accounts that answer with the model (and AI_CONTEXT_ENTRIES > 0).
  const conversations = new Conversations(redis, {
    timeline: config.timeline,
    context: { ...config.ai.context, accounts: new Set(aiSettings.keys()) },
  });
  const ai = aiParts(aiSettings, config.ai, redis, http, wechat);
  // Subscribe and template messages: outbound jobs named `notify`, with the user's grants (processors/notify.ts).
  const notify = notificationProcessor({
    notify: new NotifyClient(http, wechat),
    conversations,
    redis,
    accounts,
    outcomes: metrics.notifications,
    logger,
  });
  return {
    config,
    logger,
    options,
    accounts,
    rules,
    aiSettings,
    handler,
    registry,
    metrics,
    connection,
    redis,
    http,
    tokens,
    wechat,
    channels,
    wecom,
    handoff,
    conversations,
    ai,
    notify,
  };
}
