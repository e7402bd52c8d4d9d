import { cdata, type PushFormat } from './body.js';
import { encryptMessage } from './crypto.js';
import type { InboundMessage } from './message.js';
import { computeMsgSignature } from './signature.js';

/** The acknowledgement WeChat expects; it needs no encryption even in safe mode. */
export const SUCCESS = 'success';

/**
 * The passive `transfer_customer_service` answer that hands this message to the 客服 tool,
 * To/From swapped relative to the push, in the push's format. `kfAccount` (OA only) picks an agent.
 */
export function buildTransferReply(
  message: InboundMessage,
  format: PushFormat,
  options: { kfAccount?: string | undefined; now?: number } = {},
): string {
  const createTime = Math.floor((options.now ?? Date.now()) / 1000);
  if (format === 'json') {
    return JSON.stringify({
      ToUserName: message.FromUserName,
      FromUserName: message.ToUserName,
      CreateTime: createTime,
      MsgType: 'transfer_customer_service',
      ...(options.kfAccount ? { TransInfo: { KfAccount: options.kfAccount } } : {}),
    });
  }
  const trans = options.kfAccount ? `<TransInfo><KfAccount>${cdata(options.kfAccount)}</KfAccount></TransInfo>` : '';
  return (
    `<xml><ToUserName>${cdata(message.FromUserName)}</ToUserName><FromUserName>${cdata(message.ToUserName)}</FromUserName>` +
    `<CreateTime>${createTime}</CreateTime><MsgType>${cdata('transfer_customer_service')}</MsgType>${trans}</xml>`
  );
}

export interface SealOptions {
  token: string;
  key: Buffer;
  appId: string;
  /** Echo of the push's nonce. */
  nonce: string;
  /** Unix seconds; defaults to now. */
  timestamp?: string;
  /** 16-byte random prefix; only tests reproducing published values pass it. */
  random?: Buffer;
}

/** Encrypts a passive reply for safe mode: the `Encrypt/MsgSignature/TimeStamp/Nonce` envelope in XML or JSON. */
export function sealReply(plaintext: string, format: PushFormat, options: SealOptions): string {
  const timestamp = options.timestamp ?? String(Math.floor(Date.now() / 1000));
  if (!/^\d{1,12}$/.test(timestamp)) throw new RangeError('timestamp must be unix seconds');
  const encrypt = encryptMessage(options.key, plaintext, options.appId, options.random);
  const signature = computeMsgSignature(options.token, timestamp, options.nonce, encrypt);
  if (format === 'json') {
    return `{"Encrypt":${JSON.stringify(encrypt)},"MsgSignature":"${signature}","TimeStamp":${Number(timestamp)},"Nonce":${JSON.stringify(options.nonce)}}`;
  }
  return (
    `<xml><Encrypt>${cdata(encrypt)}</Encrypt><MsgSignature>${cdata(signature)}</MsgSignature>` +
    `<TimeStamp>${timestamp}</TimeStamp><Nonce>${cdata(options.nonce)}</Nonce></xml>`
  );
}
