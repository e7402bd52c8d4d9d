// No imports: @wx-kf/shared/openid serves the queue CLI and the ledger without the protocol layer's parsers.
/** An OpenID as this service accepts one (WeChat's are 28 characters of these). */
export const OPENID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
