import { createCipheriv } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeAesKey, decryptMessage, encryptMessage, isValidAesKey } from './crypto.js';
import { DecryptError, SignatureError } from './errors.js';
import { computeMsgSignature, verifyMsgSignature } from './signature.js';

const AES_KEY = 'jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C';
const key = decodeAesKey(AES_KEY);
const APP_ID = 'wx5823bf96d3bd56c7';

/** AES-256-CBC over exactly these bytes, no padding added: lets a test craft any plaintext layout. */
function rawEncrypt(plain: Buffer, k = key): string {
  const cipher = createCipheriv('aes-256-cbc', k, k.subarray(0, 16));
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(plain), cipher.final()]).toString('base64');
}

function layout(msg: string, appId: string, declaredLength = Buffer.byteLength(msg)): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(declaredLength);
  return Buffer.concat([Buffer.alloc(16, 7), len, Buffer.from(msg), Buffer.from(appId)]);
}

function withPadding(body: Buffer, padByte: number, count = padByte): Buffer {
  return Buffer.concat([body, Buffer.alloc(count, padByte)]);
}

function reasonOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof DecryptError) return err.reason;
    throw err;
  }
  throw new Error('expected a DecryptError');
}

describe('encryptMessage / decryptMessage', () => {
  it('round-trips any unicode message from 0 to 20 kB', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 5000 }), (msg) => {
        const encrypted = encryptMessage(key, msg, APP_ID);
        expect(Buffer.from(encrypted, 'base64').length % 32).toBe(0);
        expect(decryptMessage(key, encrypted, APP_ID)).toBe(msg);
      }),
      { numRuns: 200 },
    );
    const big = '消息'.repeat(3400); // 20 400 UTF-8 bytes
    expect(decryptMessage(key, encryptMessage(key, big, APP_ID), APP_ID)).toBe(big);
    expect(decryptMessage(key, encryptMessage(key, '', APP_ID), APP_ID)).toBe('');
  });

  it('pads to 32-byte blocks, so pad bytes above 16 occur and decrypt', () => {
    // 16 + 4 + 5 + 18 = 43 bytes -> 21 pad bytes
    const encrypted = encryptMessage(key, 'hello', APP_ID);
    expect(Buffer.from(encrypted, 'base64').length).toBe(64);
    expect(decryptMessage(key, encrypted, APP_ID)).toBe('hello');
  });

  it('uses a fresh random prefix each time', () => {
    expect(encryptMessage(key, 'same', APP_ID)).not.toBe(encryptMessage(key, 'same', APP_ID));
  });

  it.each([
    ['not base64 at all', '!!!!', 'bad_base64'],
    ['base64 with a bad length', 'abc', 'bad_base64'],
    ['empty', '', 'bad_base64'],
    ['16 bytes (one AES block, not a 32-byte block)', Buffer.alloc(16).toString('base64'), 'bad_length'],
    ['48 bytes', Buffer.alloc(48).toString('base64'), 'bad_length'],
  ])('rejects %s', (_label, encrypt, reason) => {
    expect(reasonOf(() => decryptMessage(key, encrypt, APP_ID))).toBe(reason);
  });

  it('rejects a padding byte of 0', () => {
    const body = layout('hi', APP_ID); // 40 bytes
    expect(reasonOf(() => decryptMessage(key, rawEncrypt(withPadding(body, 0, 24)), APP_ID))).toBe('bad_padding');
  });

  it('rejects a padding byte above 32', () => {
    const body = layout('hi', APP_ID);
    const plain = withPadding(body, 0, 24);
    plain[plain.length - 1] = 33;
    expect(reasonOf(() => decryptMessage(key, rawEncrypt(plain), APP_ID))).toBe('bad_padding');
  });

  it('rejects inconsistent padding bytes', () => {
    const plain = withPadding(layout('hi', APP_ID), 24);
    plain[plain.length - 5] = 23;
    expect(reasonOf(() => decryptMessage(key, rawEncrypt(plain), APP_ID))).toBe('bad_padding');
  });

  it('rejects a length field pointing past the end', () => {
    const plain = withPadding(layout('hi', APP_ID, 1_000_000), 24);
    expect(reasonOf(() => decryptMessage(key, rawEncrypt(plain), APP_ID))).toBe('bad_length_field');
  });

  it('rejects a plaintext too short to hold the header', () => {
    expect(reasonOf(() => decryptMessage(key, rawEncrypt(withPadding(Buffer.alloc(16, 1), 16)), APP_ID))).toBe(
      'bad_length_field',
    );
  });

  it('rejects another AppID', () => {
    const encrypted = encryptMessage(key, 'hi', 'wx0000000000000001');
    expect(reasonOf(() => decryptMessage(key, encrypted, APP_ID))).toBe('appid_mismatch');
  });

  it('rejects a message sealed with another key (garbage never passes as a message)', () => {
    const other = decodeAesKey('A'.repeat(43));
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (msg) => {
        const encrypted = encryptMessage(other, msg, APP_ID);
        expect(() => decryptMessage(key, encrypted, APP_ID)).toThrow(DecryptError);
      }),
      { numRuns: 300 },
    );
  });

  it('answers tampered ciphertext with a typed error or text, never a crash; msg_signature catches every tamper', () => {
    const original = encryptMessage(key, 'tamper me please, a long enough text', APP_ID);
    const encrypted = Buffer.from(original, 'base64');
    fc.assert(
      fc.property(fc.nat({ max: encrypted.length - 1 }), fc.integer({ min: 1, max: 255 }), (i, x) => {
        const tampered = Buffer.from(encrypted);
        tampered[i] = (tampered[i] ?? 0) ^ x;
        const b64 = tampered.toString('base64');
        // CBC alone is malleable: a flip in block n garbles n and flips one byte of n+1, which can still
        // decrypt. That is why only msg_signature over Encrypt authenticates a push.
        try {
          expect(typeof decryptMessage(key, b64, APP_ID)).toBe('string');
        } catch (err) {
          expect(err).toBeInstanceOf(DecryptError);
        }
        const sig = computeMsgSignature('token', '1700000000', 'n', original);
        expect(() =>
          verifyMsgSignature('token', { msg_signature: sig, timestamp: '1700000000', nonce: 'n' }, b64),
        ).toThrow(SignatureError);
      }),
      { numRuns: 500 },
    );
  });

  it('validates the EncodingAESKey', () => {
    expect(isValidAesKey(AES_KEY)).toBe(true);
    expect(isValidAesKey(`${AES_KEY}A`)).toBe(false);
    expect(isValidAesKey(`${AES_KEY.slice(0, 42)}+`)).toBe(false);
    expect(reasonOf(() => decodeAesKey('short'))).toBe('bad_aes_key');
    expect(decodeAesKey('A'.repeat(43))).toEqual(Buffer.alloc(32));
  });
});
