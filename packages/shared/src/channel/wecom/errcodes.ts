// No imports but a type: what WeCom's errcodes mean for the pull channel (docs/wechat-protocol.md §15).
import type { ErrcodeTable } from '../../api/errcodes.js';

/**
 * WeCom's errcodes, as the `wecom-kf` accounts' clients read them. Where a code means what WeChat's does, the
 * row is the same; 40001 is the secret here (a configuration error), not a stale token. An unlisted code is
 * permanent for the message, as on WeChat.
 */
export const WECOM_ERRCODES: ErrcodeTable = {
  [-1]: { action: 'retry' }, // system busy
  45009: { action: 'retry', http: 429 }, // API call frequency over the limit (WeCom: not a daily quota)
  45033: { action: 'retry', http: 429 }, // too many concurrent calls
  40014: { action: 'refresh_token' }, // invalid access_token
  41001: { action: 'refresh_token' }, // access_token missing
  42001: { action: 'refresh_token' }, // access_token expired
  40007: { action: 'reupload_media' }, // invalid media_id
  40001: { action: 'config' }, // invalid secret (the 微信客服 secret)
  40013: { action: 'config' }, // invalid CorpID
  60020: { action: 'config' }, // caller IP not on the corp's trusted list
  48002: { action: 'config' }, // API forbidden: the secret is not the 微信客服 one
  95001: { action: 'fail', window: 'exhausted' }, // send limit: 5 messages after the customer's last one, or 48 h
  95004: { action: 'fail', http: 404 }, // open_kfid does not exist
  95007: { action: 'fail' }, // invalid sync token (the puller pulls again without one)
  95016: { action: 'fail', http: 409 }, // this service_state transition is not allowed
  95018: { action: 'fail', session: 'refresh', http: 409 }, // the session's state does not allow the bot to send
};
