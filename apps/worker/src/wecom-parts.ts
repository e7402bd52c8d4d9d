import { TokenManager, WeChatClient, WeChatHttp } from '@wx-kf/shared/api';
import type { Config } from '@wx-kf/shared/config';
import type { Logger } from '@wx-kf/shared/log';
import type { RedisClient } from '@wx-kf/shared/redis';
import { PullState, WECOM_ERRCODES, WeComClient, WeComPullChannel } from '@wx-kf/shared/wecom';
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
  const http = new WeChatHttp({ baseUrl: config.api.wecomBase, proxy: config.api.proxy, errcodes: WECOM_ERRCODES });
  // One corp token per CorpID for the cluster, as for WeChat's accounts (cgi-bin/gettoken).
  const tokens = new TokenManager({
    redis,
    http,
    accounts: corps,
    source: 'wecom',
    logger,
    onRequest: (appId, result) => metrics.tokenRequests.inc({ app_id: appId, result }),
    ...tokenOptions,
  });
  const client = new WeChatClient(http, tokens, redis);
  return {
    corps: new Set(corps.map((a) => a.appId)),
    http,
    tokens,
    channel: new WeComPullChannel(client, new WeComClient(http, client)),
    state: new PullState(redis),
    metrics: metrics.wecom,
    close: async () => {
      tokens.close();
      await http.close();
    },
  };
}
