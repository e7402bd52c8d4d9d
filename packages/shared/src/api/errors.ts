import { decide, type ErrorAction } from './errcodes.js';

/** WeChat answered with a non-zero errcode. `action` is what to do about it, from the one errcode table. */
export class WeChatApiError extends Error {
  override readonly name = 'WeChatApiError';
  readonly action: ErrorAction;
  constructor(
    readonly errcode: number,
    readonly errmsg: string,
    readonly path: string,
  ) {
    super(`${errcode} ${errmsg}`);
    this.action = decide(errcode);
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
