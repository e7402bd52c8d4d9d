import { ERRCODES, type ErrcodeRule, type ErrcodeTable, type ErrorAction, errcodeRule } from './errcodes.js';

/**
 * WeChat (or WeCom) answered with a non-zero errcode. `action` is what to do about it, from the channel's
 * errcode table (WeChat's unless the client was made for another); `rule` is the whole row.
 */
export class WeChatApiError extends Error {
  override readonly name = 'WeChatApiError';
  readonly action: ErrorAction;
  readonly rule: ErrcodeRule;
  constructor(
    readonly errcode: number,
    readonly errmsg: string,
    readonly path: string,
    table: ErrcodeTable = ERRCODES,
  ) {
    super(`${errcode} ${errmsg}`);
    this.rule = errcodeRule(errcode, table);
    this.action = this.rule.action;
  }
}

/** No usable answer: a timeout, a dropped connection, an HTTP 5xx or a body that is not JSON. Retryable. */
export class TransportError extends Error {
  override readonly name = 'TransportError';
  constructor(
    message: string,
    readonly path: string,
    readonly kind: 'timeout' | 'network' | 'http' | 'body',
  ) {
    super(message);
  }
}

/** Token refreshing is suspended for an account after a configuration error, to save the daily quota. */
export class TokenUnavailableError extends Error {
  override readonly name = 'TokenUnavailableError';
  constructor(
    readonly appId: string,
    readonly errcode: number,
    readonly errmsg: string,
    readonly retryAfterMs: number,
  ) {
    super(`no access_token for ${appId}: ${errcode} ${errmsg} (next attempt in ${Math.ceil(retryAfterMs / 1000)} s)`);
  }
}
