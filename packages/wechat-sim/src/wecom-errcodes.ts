/**
 * Every errcode the WeCom (微信客服) fake answers, with its errmsg. Where WeCom documents the case the code is
 * WeCom's; where its documentation is silent the simulator chose one, said so below, and keeps it here so that
 * tests and the services name one table.
 */
export const WECOM_SIM_ERRCODES = {
  /** gettoken: the secret does not match the corp's 微信客服 secret. */
  invalidSecret: { errcode: 40001, errmsg: 'invalid secret' },
  /** gettoken: no such corp. */
  invalidCorpId: { errcode: 40013, errmsg: 'invalid corpid' },
  /** A kf call's access_token was never issued. */
  invalidAccessToken: { errcode: 40014, errmsg: 'invalid access_token' },
  missingAccessToken: { errcode: 41001, errmsg: 'access_token missing' },
  expiredAccessToken: { errcode: 42001, errmsg: 'access_token expired' },
  /** send_msg / send_msg_on_event: a msgtype WeCom does not send (or, on event, not allowed there). */
  invalidMsgtype: { errcode: 40008, errmsg: 'invalid message type' },
  /**
   * WeCom's "invalid parameter": sync_msg's limit outside 1..1000, a text over 2048 bytes (the simulator's
   * choice among 40058 and 44004: 44004 stays for an empty text), a msgid not 1-32 of [0-9A-Za-z_-], a trans
   * to a state that does not exist.
   */
  invalidParameter: { errcode: 40058, errmsg: 'invalid parameter' },
  invalidLimit: { errcode: 40058, errmsg: 'invalid limit' },
  textTooLong: { errcode: 40058, errmsg: 'text content over 2048 bytes' },
  invalidMsgid: { errcode: 40058, errmsg: 'invalid msgid' },
  /** send_msg: an image, voice, video or file whose media_id the corp never uploaded, or one expired (3 days). */
  invalidMediaId: { errcode: 40007, errmsg: 'invalid media_id' },
  /** send_msg: touser missing. */
  invalidExternalUserId: { errcode: 40096, errmsg: 'invalid external_userid' },
  /** A text message without content. */
  emptyContent: { errcode: 44004, errmsg: 'empty content' },
  /** A body that is not a JSON object. */
  dataFormat: { errcode: 47001, errmsg: 'data format error' },
  /** trans to state 3 naming a servicer the corp does not have. */
  unknownServicer: { errcode: 60111, errmsg: 'userid not found' },
  /** sync_msg: a cursor this log never handed out (the simulator's choice of code; WeCom does not document it). */
  invalidCursor: { errcode: 95000, errmsg: 'invalid cursor' },
  /**
   * send_msg: outside the 48 h after the customer's last message, or a sixth API message since it. WeCom names
   * both limits in its documentation; the simulator answers 95001 for both.
   */
  sendCountLimit: { errcode: 95001, errmsg: 'send msg count limit' },
  openKfIdNotExist: { errcode: 95004, errmsg: 'open_kfid not exist' },
  /** sync_msg: a callback Token not issued for this corp, or older than 10 minutes. */
  invalidMsgToken: { errcode: 95007, errmsg: 'invalid msg token' },
  /** service_state/trans: the move is not one WeCom allows from the current state. */
  stateNotAllowTrans: { errcode: 95016, errmsg: 'state not allow trans' },
  /** send_msg: the session is queued (2), with a person (3) or ended (4). */
  sessionStateNotAllowSend: { errcode: 95018, errmsg: 'session state not allow send' },
  /**
   * send_msg_on_event: a code (welcome_code or msg_code) never issued, used already or older than 20 s. The
   * simulator's choice of code (kept apart from trans's 95016).
   */
  invalidCode: { errcode: 95019, errmsg: 'invalid code' },
} as const;

export type WeComErrorName = keyof typeof WECOM_SIM_ERRCODES;

/** The answer for a named error (a copy: the table stays as it is). */
export const wecomErr = (name: WeComErrorName): { errcode: number; errmsg: string } => ({
  ...WECOM_SIM_ERRCODES[name],
});
