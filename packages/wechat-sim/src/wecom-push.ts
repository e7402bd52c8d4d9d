import { randomBytes } from 'node:crypto';
import { computeMsgSignature, decodeAesKey, encryptMessage, type FieldMap } from '@wx-kf/shared/wechat';
import { request } from 'undici';
import { type Delivery, deliverPush, type Push } from './push-client.js';

/** What WeCom knows of a corp when it calls back: its CorpID, the callback Token and EncodingAESKey. */
export interface WeComPushCorp {
  corpId: string;
  token: string;
  aesKey: string;
}

export interface NotifyOptions {
  /** The sync Token the notice carries (what `WeComState.issueToken` or the customer-message route gave). */
  token: string;
  /** Send the same notice this many times (WeCom re-delivers; every copy carries the same Token). Default 1. */
  times?: number;
  /** Per delivery (WeCom waits 5 s). */
  timeoutMs?: number;
  /** A wrong msg_signature, for tests of the ingress's check. */
  tamper?: boolean;
}

export interface NotifyResult {
  /** The last delivery's answer. */
  status: Delivery['status'];
  body: string;
  token: string;
  deliveries: Delivery[];
}

const CDATA = (value: string) => `<![CDATA[${value}]]>`;
const freshQuery = () => ({
  timestamp: String(Math.floor(Date.now() / 1000)),
  nonce: String(randomBytes(4).readUInt32BE()),
});
const flip = (hex: string) => (hex[0] === '0' ? '1' : '0') + hex.slice(1);

/** The encrypted callback body and its query, as WeCom sends the kf_msg_or_event notice. */
export function buildNotice(corp: WeComPushCorp, openKfId: string, options: NotifyOptions): Push {
  const { timestamp, nonce } = freshQuery();
  const message: FieldMap = {
    ToUserName: corp.corpId,
    CreateTime: timestamp,
    MsgType: 'event',
    Event: 'kf_msg_or_event',
    Token: options.token,
    OpenKfId: openKfId,
  };
  const inner =
    `<xml><ToUserName>${CDATA(corp.corpId)}</ToUserName><CreateTime>${timestamp}</CreateTime>` +
    `<MsgType>${CDATA('event')}</MsgType><Event>${CDATA('kf_msg_or_event')}</Event>` +
    `<Token>${CDATA(options.token)}</Token><OpenKfId>${CDATA(openKfId)}</OpenKfId></xml>`;
  const encrypt = encryptMessage(decodeAesKey(corp.aesKey), inner, corp.corpId);
  const signature = computeMsgSignature(corp.token, timestamp, nonce, encrypt);
  // WeCom always encrypts, and says nothing of it in the query (no encrypt_type, no plain signature).
  const query = { msg_signature: options.tamper ? flip(signature) : signature, timestamp, nonce };
  const body =
    `<xml><ToUserName>${CDATA(corp.corpId)}</ToUserName><Encrypt>${CDATA(encrypt)}</Encrypt>` +
    `<AgentID>${CDATA('')}</AgentID></xml>`;
  return { query, body, contentType: 'text/xml', mode: 'safe', format: 'xml', message };
}

/**
 * Tells the ingress at `ingressUrl` (its base; the notice goes to `/wechat/<CorpID>`) that the kf account has
 * news, as WeCom's callback does: the news itself is pulled with sync_msg and the Token. Sends it `times` times.
 */
export async function notify(
  ingressUrl: string,
  corp: WeComPushCorp,
  openKfId: string,
  options: NotifyOptions,
): Promise<NotifyResult> {
  const push = buildNotice(corp, openKfId, options);
  const url = `${ingressUrl.replace(/\/+$/, '')}/wechat/${corp.corpId}`;
  const deliveries: Delivery[] = [];
  for (let i = 0; i < (options.times ?? 1); i++) {
    const timeout = options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs };
    deliveries.push(...(await deliverPush(url, push, { maxDeliveries: 1, ...timeout })));
  }
  const last = deliveries.at(-1);
  return { status: last?.status ?? 'error', body: last?.body ?? '', token: options.token, deliveries };
}

/**
 * The GET WeCom sends when the callback URL is saved: `echostr` is encrypted, msg_signature covers it, and a
 * right server answers the decrypted plaintext (`expected`).
 */
export async function verifyWeComUrl(
  ingressUrl: string,
  corp: WeComPushCorp,
  options: { tamper?: boolean } = {},
): Promise<{ status: number; body: string; expected: string }> {
  const expected = String(randomBytes(8).readBigUInt64BE());
  const echostr = encryptMessage(decodeAesKey(corp.aesKey), expected, corp.corpId);
  const { timestamp, nonce } = freshQuery();
  const signature = computeMsgSignature(corp.token, timestamp, nonce, echostr);
  const query = new URLSearchParams({
    msg_signature: options.tamper ? flip(signature) : signature,
    timestamp,
    nonce,
    echostr,
  });
  const res = await request(`${ingressUrl.replace(/\/+$/, '')}/wechat/${corp.corpId}?${query}`);
  return { status: res.statusCode, body: await res.body.text(), expected };
}
