import type { TokenManager, WeChatHttp } from '@wx-kf/shared/api';
import type { Config } from '@wx-kf/shared/config';
import type { Logger } from '@wx-kf/shared/log';
import type { RedisClient } from '@wx-kf/shared/redis';
import { PullState, WeComPullChannel, wecomApi } from '@wx-kf/shared/wecom';
import type { WorkerMetrics } from './metrics.js';
import type { PullMetrics } from './wecom-metrics.js';
import type { WorkerStartOptions } from './worker.js';

/** WeCom's pull channel in a worker: its own API origin, errcodes and corp tokens, the pull state, its metrics. */
export interface WeComParts {
  corps: Set<string>;
  http: WeChatHttp;
  tokens: TokenManager;
  channel: WeComPullChannel;
  state: PullState;
  metrics: PullMetrics;
  close(): Promise<void>;
}

/** The pull channel's parts, or undefined when no wecom-kf account is configured. */
export function wecomParts(
  config: Config,
  redis: RedisClient,
  logger: Logger,
  metrics: WorkerMetrics,
  tokenOptions: WorkerStartOptions['tokenOptions'],
): WeComParts | undefined {
  const corps = config.accounts.filter((a) => a.type === 'wecom-kf');
  if (corps.length === 0) return undefined;
  // One corp token per CorpID for the cluster, as for WeChat's accounts (cgi-bin/gettoken).
  const api = wecomApi({
    base: config.api.wecomBase,
    proxy: config.api.proxy,
    redis,
    corps,
    logger,
    onRequest: (appId, result) => metrics.tokenRequests.inc({ app_id: appId, result }),
    tokenOptions,
  });
  return {
    corps: new Set(corps.map((a) => a.appId)),
    http: api.http,
    tokens: api.tokens,
    channel: new WeComPullChannel(api.client, api.kf),
    state: new PullState(redis),
    metrics: metrics.wecom,
    close: api.close,
  };
}
