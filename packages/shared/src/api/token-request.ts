import { z } from 'zod';
import type { TokenSource } from '../config/index.js';
import type { WeChatHttp } from './http.js';

const tokenAnswer = z.looseObject({ access_token: z.string(), expires_in: z.number() });
/** What cgi-bin/token and cgi-bin/stable_token answer. */
export type TokenAnswer = z.infer<typeof tokenAnswer>;

/**
 * Asks WeChat for an account's token: cgi-bin/stable_token (never with force_refresh) or cgi-bin/token; or
 * WeCom (`wecom`) for a corp's: cgi-bin/gettoken with the CorpID and the 微信客服 secret.
 */
export function requestToken(
  http: WeChatHttp,
  source: TokenSource | 'wecom',
  account: { appId: string; appSecret: string },
): Promise<TokenAnswer> {
  if (source === 'wecom') {
    return http.call(
      '/cgi-bin/gettoken',
      { query: { corpid: account.appId, corpsecret: account.appSecret } },
      tokenAnswer,
    );
  }
  const credentials = { grant_type: 'client_credential', appid: account.appId, secret: account.appSecret };
  return source === 'stable'
    ? http.call('/cgi-bin/stable_token', { json: { ...credentials, force_refresh: false } }, tokenAnswer)
    : http.call('/cgi-bin/token', { query: credentials }, tokenAnswer);
}
