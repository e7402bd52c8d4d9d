// No imports: the queue CLI loads this table alone (@wx-kf/shared/errcodes) and starts fast.
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

/** What a refused custom/send says about the user's send window: no sends left in it, or closed. */
export type WindowEffect = 'exhausted' | 'closed';

/** What a refused notification says about the user's grants of its template: none left (the ledger learns). */
export type GrantEffect = 'cleared';

/** One errcode's row: everything wx-kf does about it. */
export interface ErrcodeRow {
  /** What the caller does (retries, token, media, account pause). */
  readonly action: ErrorAction;
  /** What a refused send does to the user's window in the ledger; absent: the send taken for it is given back. */
  readonly window?: WindowEffect;
  /** What a refused subscribe message does to the user's grants of its template; absent: the grant is given back. */
  readonly grant?: GrantEffect;
  /** The admin API's HTTP status for this refusal; absent: the action's default (`httpOf`). */
  readonly http?: number;
  /** WeCom: the session is not the bot's (95018): read its state again (the handoff follows it). */
  readonly session?: 'refresh';
}

/** One channel's errcodes (WeChat's below; WeCom's in channel/wecom/errcodes.ts). */
export type ErrcodeTable = Readonly<Record<number, ErrcodeRow>>;

/** An errcode's row as callers read it: the HTTP status always given. */
export interface ErrcodeRule extends ErrcodeRow {
  readonly http: number;
}

/** The admin API's status when a row names none: WeChat unavailable or misconfigured (502), else refused (400). */
const HTTP_BY_ACTION: Readonly<Record<ErrorAction, number>> = {
  retry: 502,
  refresh_token: 502,
  config: 502,
  reupload_media: 400,
  pause_account: 400,
  fail: 400,
};

/**
 * The one errcode table (mirrored, and checked by errcodes.test.ts, in docs/wechat-protocol.md §9). An unlisted
 * code is permanent: `fail`, no window effect, HTTP 400.
 */
export const ERRCODES: ErrcodeTable = {
  [-1]: { action: 'retry' }, // system busy
  45011: { action: 'retry', http: 429 }, // API called too frequently
  40001: { action: 'refresh_token' }, // invalid credential / access_token not latest
  40014: { action: 'refresh_token' }, // invalid access_token
  42001: { action: 'refresh_token' }, // access_token expired
  41001: { action: 'refresh_token' }, // access_token missing
  40007: { action: 'reupload_media' }, // invalid media_id (expired after 3 days)
  45009: { action: 'pause_account' }, // daily quota reached
  40002: { action: 'config' }, // invalid grant_type
  40013: { action: 'config' }, // invalid AppID
  40125: { action: 'config' }, // invalid AppSecret
  40164: { action: 'config' }, // caller IP not in the whitelist
  40243: { action: 'config' }, // AppSecret frozen
  89503: { action: 'config' }, // IP needs the administrator's confirmation
  48001: { action: 'fail' }, // API not authorised
  45015: { action: 'fail', window: 'closed' }, // outside the reply window / unsubscribed
  45047: { action: 'fail', window: 'exhausted' }, // reply count for the window used up
  40003: { action: 'fail' }, // invalid openid
  43101: { action: 'fail', grant: 'cleared' }, // subscribe message: the user has no grant (refused, or used up)
  47003: { action: 'fail' }, // subscribe / template message: a data value breaks its rule
  41030: { action: 'fail' }, // subscribe message: the page is not in the released Mini Program
  40037: { action: 'fail' }, // invalid template_id
  40226: { action: 'fail', http: 403 }, // high-risk user blocked (code2session)
  65401: { action: 'fail', http: 404 }, // invalid agent
  65406: { action: 'fail', http: 409 }, // agent exists
  65407: { action: 'fail', http: 409 }, // already an agent of this account
  65408: { action: 'fail', http: 409 }, // an invitation for this WeChat ID is pending
  65411: { action: 'fail', http: 409 }, // this agent has an invitation pending
  65412: { action: 'fail', http: 409 }, // this agent is bound already
  65413: { action: 'fail', http: 404 }, // no session for this user
  65414: { action: 'fail', http: 409 }, // another agent serves the user
};

const UNLISTED: ErrcodeRow = { action: 'fail' };

/** The admin API's HTTP status for a row: its own, or its action's. */
export function httpOf(row: ErrcodeRow): number {
  return row.http ?? HTTP_BY_ACTION[row.action];
}

/** What wx-kf does about `errcode` on a channel (WeChat's by default): its row, or an unlisted code's (permanent). */
export function errcodeRule(errcode: number, table: ErrcodeTable = ERRCODES): ErrcodeRule {
  const row = table[errcode] ?? UNLISTED;
  return { ...row, http: httpOf(row) };
}

/** What a caller does about `errcode` (its row's action). */
export function decide(errcode: number, table: ErrcodeTable = ERRCODES): ErrorAction {
  return errcodeRule(errcode, table).action;
}
