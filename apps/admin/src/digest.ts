import { createHash, timingSafeEqual } from 'node:crypto';

/** The hex SHA-256 of a string: what a key name, a job id or a failure count holds instead of a secret. */
export const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/** Equal strings, compared in constant time over SHA-256 digests: neither the length nor a prefix leaks. */
export function digestEqual(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}
