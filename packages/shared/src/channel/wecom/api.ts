import { WeChatClient } from '../../api/client.js';
import { WeChatHttp } from '../../api/http.js';
import { type TokenAccount, TokenManager, type TokenManagerOptions } from '../../api/token-manager.js';
import type { Logger } from '../../log.js';
import type { RedisClient } from '../../redis/index.js';
import { WeComClient } from './client.js';
import { WECOM_ERRCODES } from './errcodes.js';

/** Where WeCom's API is (WECOM_API_BASE, the proxy) and whose tokens to keep. */
export interface WeComApiOptions {
  base: string;
  proxy?: string | undefined;
  redis: RedisClient;
  /** The wecom-kf corps (CorpID as appId, the 微信客服 secret). */
  corps: TokenAccount[];
  logger: Logger;
  onRequest?: TokenManagerOptions['onRequest'];
  /** Token manager tuning (tests shorten leases and cool-downs). */
  tokenOptions?: Pick<TokenManagerOptions, 'leaseMs' | 'cooldownMs' | 'waitMs'> | undefined;
}

/**
 * WeCom's API for the wecom-kf corps, as the worker and the CLI use it: its own origin and errcode table, one token
 * per corp for the cluster (cgi-bin/gettoken, shared through Redis like WeChat's), its client; `close` ends both.
 */
export function wecomApi(o: WeComApiOptions) {
  const http = new WeChatHttp({ baseUrl: o.base, proxy: o.proxy, errcodes: WECOM_ERRCODES });
  const tokens = new TokenManager({
    redis: o.redis,
    http,
    accounts: o.corps,
    source: 'wecom',
    logger: o.logger,
    onRequest: o.onRequest,
    ...o.tokenOptions,
  });
  const client = new WeChatClient(http, tokens, o.redis);
  return {
    http,
    tokens,
    client,
    kf: new WeComClient(http, client),
    close: async () => {
      tokens.close();
      await http.close();
    },
  };
}
