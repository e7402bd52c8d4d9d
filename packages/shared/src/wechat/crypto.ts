import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { DecryptError } from './errors.js';

// WXBizMsgCrypt pads with PKCS#7 to 32-byte blocks, not AES's 16; real pushes have pad bytes > 16.
const BLOCK = 32;
const AES_KEY_RE = /^[A-Za-z0-9]{43}$/;
const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** Turns the 43-character EncodingAESKey into the 32-byte AES key (IV = its first 16 bytes). */
export function decodeAesKey(encodingAESKey: string): Buffer {
  if (!AES_KEY_RE.test(encodingAESKey)) throw new DecryptError('bad_aes_key');
  return Buffer.from(`${encodingAESKey}=`, 'base64');
}

/** True when `value` is a usable EncodingAESKey. */
export function isValidAesKey(value: string): boolean {
  return AES_KEY_RE.test(value);
}

/**
 * Decrypts an `Encrypt` value: AES-256-CBC, PKCS#7 to 32 bytes, `random16 | be32 len | msg | appId`.
 * Returns the message exactly as sent; throws DecryptError when anything is off, including a foreign AppID.
 */
export function decryptMessage(key: Buffer, encrypt: string, appId: string): string {
  if (encrypt.length === 0 || encrypt.length % 4 !== 0 || !BASE64_RE.test(encrypt)) {
    throw new DecryptError('bad_base64');
  }
  const data = Buffer.from(encrypt, 'base64');
  if (data.length === 0 || data.length % BLOCK !== 0) throw new DecryptError('bad_length');

  const decipher = createDecipheriv('aes-256-cbc', key, key.subarray(0, 16));
  decipher.setAutoPadding(false);
  const plain = Buffer.concat([decipher.update(data), decipher.final()]);

  const pad = plain[plain.length - 1] ?? 0;
  if (pad < 1 || pad > BLOCK) throw new DecryptError('bad_padding');
  for (let i = plain.length - pad; i < plain.length; i++) {
    if (plain[i] !== pad) throw new DecryptError('bad_padding');
  }
  const body = plain.subarray(0, plain.length - pad);
  if (body.length < 20) throw new DecryptError('bad_length_field');
  const len = body.readUInt32BE(16);
  if (20 + len > body.length) throw new DecryptError('bad_length_field');

  const receivedAppId = body.subarray(20 + len);
  const expected = Buffer.from(appId);
  if (!receivedAppId.equals(expected)) throw new DecryptError('appid_mismatch');
  return body.subarray(20, 20 + len).toString('utf8');
}

/** Encrypts `message` for `appId`; `random` (16 bytes) is only given by tests reproducing published values. */
export function encryptMessage(key: Buffer, message: string, appId: string, random: Buffer = randomBytes(16)): string {
  if (random.length !== 16) throw new RangeError('random prefix must be 16 bytes');
  const msg = Buffer.from(message, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(msg.length);
  const body = Buffer.concat([random, len, msg, Buffer.from(appId, 'utf8')]);
  const pad = BLOCK - (body.length % BLOCK);
  const padded = Buffer.concat([body, Buffer.alloc(pad, pad)]);

  const cipher = createCipheriv('aes-256-cbc', key, key.subarray(0, 16));
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(padded), cipher.final()]).toString('base64');
}
