import { createHash, timingSafeEqual } from 'node:crypto';
import { SignatureError } from './errors.js';

function sha1OfSorted(parts: string[]): string {
  return createHash('sha1').update(parts.sort().join('')).digest('hex');
}

/** The 3-part `signature` of GET verification and plaintext POSTs: sha1(sort(token, timestamp, nonce)). */
export function computeSignature(token: string, timestamp: string, nonce: string): string {
  return sha1OfSorted([token, timestamp, nonce]);
}

/** The 4-part `msg_signature` of compat/safe pushes and encrypted replies: sha1(sort(token, timestamp, nonce, encrypt)). */
export function computeMsgSignature(token: string, timestamp: string, nonce: string, encrypt: string): string {
  return sha1OfSorted([token, timestamp, nonce, encrypt]);
}

/** Constant-time string equality (the lengths are not secret). */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

export interface SignedQuery {
  signature?: string | undefined;
  timestamp?: string | undefined;
  nonce?: string | undefined;
  msg_signature?: string | undefined;
}

/** Throws SignatureError unless `signature` is right for this token. */
export function verifySignature(token: string, q: SignedQuery): void {
  if (!q.signature || !q.timestamp || !q.nonce) throw new SignatureError('signature, timestamp and nonce are required');
  if (!safeEqual(computeSignature(token, q.timestamp, q.nonce), q.signature.toLowerCase())) {
    throw new SignatureError('signature does not match');
  }
}

/**
 * Returns the `Encrypt` value that `msg_signature` authenticates for this token (one value, or the candidates
 * an envelope showed); throws SignatureError when none matches.
 */
export function verifyMsgSignature(token: string, q: SignedQuery, encrypt: string | readonly string[]): string {
  if (!q.msg_signature || !q.timestamp || !q.nonce) {
    throw new SignatureError('msg_signature, timestamp and nonce are required');
  }
  const expected = q.msg_signature.toLowerCase();
  for (const candidate of typeof encrypt === 'string' ? [encrypt] : encrypt) {
    if (safeEqual(computeMsgSignature(token, q.timestamp, q.nonce, candidate), expected)) return candidate;
  }
  throw new SignatureError('msg_signature does not match');
}
