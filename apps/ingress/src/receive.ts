import {
  type AccountConfig,
  decodeAesKey,
  decryptMessage,
  detectFormat,
  type InboundMessage,
  MessageFormatError,
  type PushFormat,
  type PushMode,
  parseFields,
  parseMessage,
  SignatureError,
  verifyMsgSignature,
  verifySignature,
} from '@wx-kf/shared';

/** An account as the ingress uses it: config plus the AES key decoded once. */
export interface IngressAccount {
  config: AccountConfig;
  key?: Buffer | undefined;
}

export function ingressAccount(config: AccountConfig): IngressAccount {
  return { config, key: config.aesKey ? decodeAesKey(config.aesKey) : undefined };
}

/** A push refused by policy (plaintext to a safe-only account, no key to decrypt with). */
export class PolicyError extends Error {
  override readonly name = 'PolicyError';
}

export interface PushQuery {
  signature?: string | undefined;
  timestamp?: string | undefined;
  nonce?: string | undefined;
  msg_signature?: string | undefined;
  encrypt_type?: string | undefined;
}

export interface ReceivedPush {
  message: InboundMessage;
  mode: PushMode;
  format: PushFormat;
}

/** Checks the push's timestamp against our clock (0 = no check); blunts replays of a captured signature. */
export function checkTimestamp(timestamp: string | undefined, toleranceSeconds: number, nowMs = Date.now()): void {
  if (toleranceSeconds === 0) return;
  const ts = Number(timestamp);
  if (!timestamp || !Number.isInteger(ts)) throw new SignatureError('timestamp is missing or not unix seconds');
  if (Math.abs(nowMs / 1000 - ts) > toleranceSeconds) {
    throw new SignatureError(`timestamp is more than ${toleranceSeconds} s away from our clock`);
  }
}

/**
 * Authenticates and opens one push: plaintext checks `signature`; compat and safe check `msg_signature`
 * over `Encrypt`, decrypt it and use only the decrypted copy. Throws SignatureError, DecryptError,
 * MessageFormatError or PolicyError.
 */
export function receivePush(account: IngressAccount, query: PushQuery, body: string): ReceivedPush {
  const { config } = account;
  const format = detectFormat(body);
  if (query.encrypt_type === undefined) {
    if (config.security === 'safe')
      throw new PolicyError('this account accepts only encrypted (safe or compat) pushes');
    verifySignature(config.token, query);
    return { message: parseMessage(body, format), mode: 'plain', format };
  }
  if (query.encrypt_type !== 'aes') throw new MessageFormatError('encrypt_type must be "aes"');
  // Not validated as XML: only the Encrypt it yields matters, and msg_signature checks exactly that.
  const envelope = parseFields(body, format, { validate: false });
  const encrypt = envelope.Encrypt;
  if (typeof encrypt !== 'string' || encrypt === '') throw new MessageFormatError('encrypted push without Encrypt');
  verifyMsgSignature(config.token, query, encrypt);
  if (!account.key) throw new PolicyError('encrypted push, but this account has no EncodingAESKey configured');
  const plaintext = decryptMessage(account.key, encrypt, config.appId);
  // Compat mode carries the plaintext fields beside Encrypt; they are unauthenticated, so they are ignored.
  const mode: PushMode = Object.keys(envelope).some((k) => k !== 'Encrypt' && k !== 'ToUserName') ? 'compat' : 'safe';
  // Decrypted with our key and the AppID checked: WeChat wrote it, no need to validate it again.
  return { message: parseMessage(plaintext, detectFormat(plaintext), { validate: false }), mode, format };
}
