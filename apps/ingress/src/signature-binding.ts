import { createHash } from 'node:crypto';
import { defineScript, keyspaceOf, type RedisClient, reply, whenWritable } from '@wx-kf/shared/redis';
import { SignatureError } from '@wx-kf/shared/wechat';

/** The first request with a signature wins (lua/bind-signature.lua). */
const bindScript = defineScript('bind-signature', ['binding'], ['digest', 'expireAtMs']);

/** Margin for clocks of several ingress replicas that differ a little. */
const CLOCK_MARGIN_MS = 60_000;

/** What a signature came with: a URL check (GET), a plaintext push, or an encrypted (compat or safe) push. */
export type SignedRequestKind = 'get' | 'plain' | 'aes';

/** A request's valid `signature` and what it came with, to bind them. */
export interface SignatureUse {
  appId: string;
  signature: string;
  timestamp: string | undefined;
  kind: SignedRequestKind;
  /** The raw body (a GET: its echostr). */
  body: Buffer | string;
}

/**
 * A `signature` covers token, timestamp and nonce, never the body or the mode. Every request that presents a
 * valid one consumes it: the signature is bound to the first request's kind and body, in Redis so every
 * ingress replica agrees, for as long as its timestamp is accepted. WeChat's re-deliveries (the same request)
 * pass; a captured signature with another body or in another mode (a safe push's query with `encrypt_type`
 * and `msg_signature` dropped, a GET check's query as a POST) throws SignatureError. Other errors are Redis's.
 */
export function signatureBinder(redis: RedisClient, toleranceSeconds: number) {
  bindScript.register(redis);
  return async (use: SignatureUse): Promise<void> => {
    const digest = createHash('sha256').update(`${use.kind}\n`).update(use.body).digest('hex');
    const acceptedUntil = (Number(use.timestamp) + toleranceSeconds) * 1000;
    const expireAt = Math.max(acceptedUntil, Date.now()) + CLOCK_MARGIN_MS;
    const binding = keyspaceOf(redis).signatureBinding(use.appId, use.signature);
    await whenWritable(redis);
    if (reply.int(await bindScript(redis, { binding }, { digest, expireAtMs: expireAt })) !== 1) {
      throw new SignatureError('this signature was already used with another request');
    }
  };
}

export type SignatureBinder = ReturnType<typeof signatureBinder>;
