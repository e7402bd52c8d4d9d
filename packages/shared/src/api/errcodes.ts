/**
 * What a caller does about an errcode:
 * - `retry`: transient; back off and try again.
 * - `refresh_token`: the access_token is stale; invalidate it (if still the one that failed), refresh, retry once.
 * - `reupload_media`: the media_id expired; upload the file again, retry once.
 * - `pause_account`: the account's quota is spent; stop sending for it instead of hammering.
 * - `config`: a configuration problem (AppID, secret, IP whitelist); stop asking for tokens for a while, alert.
 * - `fail`: permanent for this message; fail the job with the code.
 */
export type ErrorAction = 'retry' | 'refresh_token' | 'reupload_media' | 'pause_account' | 'config' | 'fail';

// The one table (docs/wechat-protocol.md, errcodes). Unlisted codes are permanent.
const TABLE: Record<number, ErrorAction> = {
  [-1]: 'retry', // system busy
  45011: 'retry', // API called too frequently
  40001: 'refresh_token', // invalid credential / access_token not latest
  40014: 'refresh_token', // invalid access_token
  42001: 'refresh_token', // access_token expired
  41001: 'refresh_token', // access_token missing
  40007: 'reupload_media', // invalid media_id (expired after 3 days)
  45009: 'pause_account', // daily quota reached
  40002: 'config', // invalid grant_type
  40013: 'config', // invalid AppID
  40125: 'config', // invalid AppSecret
  40164: 'config', // caller IP not in the whitelist
  40243: 'config', // AppSecret frozen
  89503: 'config', // IP needs the administrator's confirmation
  48001: 'fail', // API not authorised
  45015: 'fail', // outside the reply window
  45047: 'fail', // reply count for the window used up
  40003: 'fail', // invalid openid
};

export function decide(errcode: number): ErrorAction {
  return TABLE[errcode] ?? 'fail';
}
