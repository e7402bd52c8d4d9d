import { createCipheriv, randomBytes } from 'node:crypto';
import {
  computeMsgSignature,
  computeSignature,
  decodeAesKey,
  encryptMessage,
  type FieldMap,
  formatFields,
  type PushFormat,
  type PushMode,
} from '@wx-kf/shared/wechat';
import { request } from 'undici';

export type { PushMode } from '@wx-kf/shared/wechat';

/** What WeChat knows of an account when it pushes: the Token and (for compat/safe) the EncodingAESKey. */
export interface PushAccount {
  appId: string;
  token: string;
  aesKey?: string | undefined;
}

/** Ways to break a push, for tests of the ingress's defences. */
export type Tamper =
  | 'signature' // wrong `signature`
  | 'msg_signature' // wrong `msg_signature`
  | 'ciphertext' // Encrypt altered after signing
  | 'appid' // encrypted for another AppID, correctly signed
  | 'key' // encrypted with another key, correctly signed
  | 'padding'; // invalid PKCS#7 padding, correctly signed

export interface PushOptions {
  account: PushAccount;
  message: FieldMap;
  /** The message as WeChat wrote it (e.g. the documentation's indented XML) instead of `message` formatted. */
  plaintext?: string;
  mode?: PushMode;
  format?: PushFormat;
  timestamp?: string;
  nonce?: string;
  tamper?: Tamper;
}

export interface Push {
  query: Record<string, string>;
  body: string;
  contentType: string;
  mode: PushMode;
  format: PushFormat;
  message: FieldMap;
}

function flipHex(hex: string): string {
  return (hex[0] === '0' ? '1' : '0') + hex.slice(1);
}

function badPaddingCiphertext(key: Buffer, message: string, appId: string): string {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(Buffer.byteLength(message));
  const body = Buffer.concat([randomBytes(16), len, Buffer.from(message), Buffer.from(appId)]);
  const padded = Buffer.concat([body, Buffer.alloc(32 - (body.length % 32), 0)]);
  const cipher = createCipheriv('aes-256-cbc', key, key.subarray(0, 16));
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(padded), cipher.final()]).toString('base64');
}

function encryptFor(options: PushOptions, plaintext: string): string {
  const { account, tamper } = options;
  if (!account.aesKey)
    throw new Error(`account ${account.appId} has no EncodingAESKey: it can only push in plain mode`);
  const key = decodeAesKey(tamper === 'key' ? 'B'.repeat(43) : account.aesKey);
  if (tamper === 'padding') return badPaddingCiphertext(key, plaintext, account.appId);
  return encryptMessage(key, plaintext, tamper === 'appid' ? 'wx00000000000bad00' : account.appId);
}

/** Builds the request WeChat would send for this message: query string, body and content type. */
export function buildPush(options: PushOptions): Push {
  const { account, message, tamper } = options;
  const mode = options.mode ?? 'plain';
  const format = options.format ?? 'xml';
  const timestamp = options.timestamp ?? String(Math.floor(Date.now() / 1000));
  const nonce = options.nonce ?? String(randomBytes(4).readUInt32BE());
  const signature = computeSignature(account.token, timestamp, nonce);
  const query: Record<string, string> = {
    signature: tamper === 'signature' ? flipHex(signature) : signature,
    timestamp,
    nonce,
    openid: String(message.FromUserName ?? ''),
  };
  const plaintext = options.plaintext ?? formatFields(message, format);
  let body: string;
  if (mode === 'plain') {
    body = plaintext;
  } else {
    const encrypt = encryptFor(options, plaintext);
    const msgSignature = computeMsgSignature(account.token, timestamp, nonce, encrypt);
    const sent =
      tamper === 'ciphertext' ? `${encrypt.slice(0, 8)}${encrypt[8] === 'A' ? 'B' : 'A'}${encrypt.slice(9)}` : encrypt;
    query.encrypt_type = 'aes';
    query.msg_signature = tamper === 'msg_signature' ? flipHex(msgSignature) : msgSignature;
    const envelope: FieldMap =
      mode === 'safe' ? { ToUserName: message.ToUserName ?? '', Encrypt: sent } : { ...message, Encrypt: sent };
    body =
      mode === 'compat' && options.plaintext && format === 'xml'
        ? options.plaintext.replace(/<\/xml>\s*$/, `<Encrypt><![CDATA[${sent}]]></Encrypt></xml>`)
        : formatFields(envelope, format);
  }
  return { query, body, contentType: format === 'xml' ? 'text/xml' : 'application/json', mode, format, message };
}

export interface Delivery {
  status: number | 'timeout' | 'error';
  body: string;
  ms: number;
}

export interface DeliverOptions {
  /** WeChat waits 5 s for an answer. */
  timeoutMs?: number;
  /** WeChat re-delivers a push that got no valid answer; up to 4 deliveries in all. */
  maxDeliveries?: number;
}

/** An answer WeChat accepts: HTTP 200 with `success`, an empty body, or a reply document. */
export function isAccepted(d: Delivery): boolean {
  return d.status === 200;
}

/** Sends a push to `url` the way WeChat does, re-delivering it until accepted or out of attempts. */
export async function deliverPush(url: string, push: Push, options: DeliverOptions = {}): Promise<Delivery[]> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const deliveries: Delivery[] = [];
  const target = `${url}${url.includes('?') ? '&' : '?'}${new URLSearchParams(push.query)}`;
  for (let i = 0; i < (options.maxDeliveries ?? 1); i++) {
    const started = performance.now();
    let delivery: Delivery;
    try {
      const res = await request(target, {
        method: 'POST',
        body: push.body,
        headers: { 'content-type': push.contentType },
        signal: AbortSignal.timeout(timeoutMs),
      });
      delivery = { status: res.statusCode, body: await res.body.text(), ms: performance.now() - started };
    } catch (error) {
      const status = error instanceof Error && error.name === 'TimeoutError' ? 'timeout' : 'error';
      const body = error instanceof Error ? error.message : String(error);
      delivery = { status, body, ms: performance.now() - started };
    }
    deliveries.push(delivery);
    if (isAccepted(delivery)) break;
  }
  return deliveries;
}

/** The GET WeChat sends when the URL is saved in the console; a right server echoes `echostr`. */
export async function verifyUrl(
  url: string,
  account: PushAccount,
  options: { echostr?: string; tamper?: boolean } = {},
): Promise<{ status: number; body: string }> {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const nonce = String(randomBytes(4).readUInt32BE());
  const signature = computeSignature(account.token, timestamp, nonce);
  const echostr = options.echostr ?? String(randomBytes(8).readBigUInt64BE());
  const query = new URLSearchParams({
    signature: options.tamper ? flipHex(signature) : signature,
    timestamp,
    nonce,
    echostr,
  });
  const res = await request(`${url}?${query}`);
  return { status: res.statusCode, body: await res.body.text() };
}
