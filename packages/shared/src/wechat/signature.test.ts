import { describe, expect, it } from 'vitest';
import { SignatureError } from './errors.js';
import { computeSignature, safeEqual, verifyMsgSignature, verifySignature } from './signature.js';

describe('signatures', () => {
  const q = { timestamp: '1714036504', nonce: '1514711492', signature: 'f464b24fc39322e44b38aa78f5edd27bd1441696' };

  it('sorts the parts before hashing (order of arguments does not matter)', () => {
    expect(computeSignature('AAAAA', q.timestamp, q.nonce)).toBe(computeSignature(q.nonce, 'AAAAA', q.timestamp));
  });

  it('accepts an upper-case hex signature', () => {
    expect(() => verifySignature('AAAAA', { ...q, signature: q.signature.toUpperCase() })).not.toThrow();
  });

  it.each([
    ['no signature', { ...q, signature: undefined }],
    ['no timestamp', { ...q, timestamp: undefined }],
    ['no nonce', { ...q, nonce: '' }],
    ['a changed nonce', { ...q, nonce: '1514711493' }],
    ['a truncated signature', { ...q, signature: q.signature.slice(0, 39) }],
  ])('rejects %s', (_label, query) => {
    expect(() => verifySignature('AAAAA', query)).toThrow(SignatureError);
  });

  it('requires msg_signature for encrypted pushes (signature alone is not enough)', () => {
    expect(() => verifyMsgSignature('AAAAA', q, 'ENCRYPT')).toThrow('msg_signature, timestamp and nonce are required');
  });

  it('compares in constant time and tells unequal lengths apart', () => {
    expect(safeEqual('abc', 'abc')).toBe(true);
    expect(safeEqual('abc', 'abd')).toBe(false);
    expect(safeEqual('abc', 'abcd')).toBe(false);
    expect(safeEqual('', '')).toBe(true);
  });
});
