import { describe, expect, it } from 'vitest';
import { parseFields } from './body.js';
import { decodeAesKey, decryptMessage, encryptMessage } from './crypto.js';
import vectorFile from './fixtures/vectors.json' with { type: 'json' };
import { parseMessage } from './message.js';
import { sealReply } from './passive-reply.js';
import { computeMsgSignature, computeSignature, verifyMsgSignature, verifySignature } from './signature.js';

// Published values from WeChat's message-push documentation (copied from shared/wechat/vectors.json).
interface Vector {
  id: string;
  kind: 'push-decrypt' | 'reply-encrypt' | 'get-signature' | 'post-plaintext-signature';
  format?: 'json' | 'xml';
  token: string;
  encodingAESKey?: string;
  appId?: string;
  timestamp: string;
  nonce: string;
  signature?: string;
  urlSignature?: string;
  msgSignature?: string;
  encrypt?: string;
  random?: string;
  plaintext?: string;
  body?: string;
  replyBody?: string;
}
const vectors = vectorFile.vectors as Vector[];
const byKind = (kind: Vector['kind']) => vectors.filter((v) => v.kind === kind);

describe('official vectors', () => {
  it('covers every kind of published value', () => {
    expect(new Set(vectors.map((v) => v.kind))).toEqual(
      new Set(['push-decrypt', 'reply-encrypt', 'get-signature', 'post-plaintext-signature']),
    );
  });

  it.each(byKind('get-signature').concat(byKind('post-plaintext-signature')))('3-part signature: $id', (v) => {
    expect(computeSignature(v.token, v.timestamp, v.nonce)).toBe(v.signature);
    expect(() => verifySignature(v.token, v)).not.toThrow();
    expect(() => verifySignature(`${v.token}x`, v)).toThrow('signature does not match');
  });

  it.each(byKind('push-decrypt'))('push: $id verifies, decrypts to the exact bytes and re-encrypts', (v) => {
    const key = decodeAesKey(v.encodingAESKey as string);
    const encrypt = v.encrypt as string;
    if (v.urlSignature) expect(computeSignature(v.token, v.timestamp, v.nonce)).toBe(v.urlSignature);
    expect(computeMsgSignature(v.token, v.timestamp, v.nonce, encrypt)).toBe(v.msgSignature);
    expect(() => verifyMsgSignature(v.token, { ...v, msg_signature: v.msgSignature }, encrypt)).not.toThrow();

    expect(decryptMessage(key, encrypt, v.appId as string)).toBe(v.plaintext);
    expect(() => decryptMessage(key, encrypt, 'wx0000000000000000')).toThrow('AppID does not match');
    expect(encryptMessage(key, v.plaintext as string, v.appId as string, Buffer.from(v.random as string))).toBe(
      encrypt,
    );

    if (v.body) expect(parseFields(v.body).Encrypt).toBe(encrypt);
    const message = parseMessage(v.plaintext as string);
    expect(message.MsgType).toBe('event');
    expect(message.Event).toBe('debug_demo');
    expect(message.CreateTime).toBe(v.timestamp);
  });

  it.each(byKind('reply-encrypt'))('reply: $id reproduces the published ciphertext and signature', (v) => {
    const key = decodeAesKey(v.encodingAESKey as string);
    const random = Buffer.from(v.random as string);
    const encrypt = encryptMessage(key, v.plaintext as string, v.appId as string, random);
    expect(encrypt).toBe(v.encrypt);
    expect(computeMsgSignature(v.token, v.timestamp, v.nonce, encrypt)).toBe(v.msgSignature);
    expect(decryptMessage(key, encrypt, v.appId as string)).toBe(v.plaintext);

    const sealed = sealReply(v.plaintext as string, v.format ?? 'xml', {
      token: v.token,
      key,
      appId: v.appId as string,
      nonce: v.nonce,
      timestamp: v.timestamp,
      random,
    });
    if (v.replyBody) expect(sealed).toBe(v.replyBody);
    const fields = parseFields(sealed);
    expect(fields).toMatchObject({ Encrypt: v.encrypt, MsgSignature: v.msgSignature, Nonce: v.nonce });
    expect(fields.TimeStamp).toBe(v.timestamp);
  });
});
