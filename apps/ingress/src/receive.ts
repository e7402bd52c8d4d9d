import type { AccountConfig } from '@wx-kf/shared/config';
import {
  decodeAesKey,
  decryptMessage,
  detectFormat,
  type InboundMessage,
  MessageFormatError,
  type PushFormat,
  type PushMode,
  parseMessage,
  SignatureError,
  verifyMsgSignature,
  verifySignature,
} from '@wx-kf/shared/wechat';

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
  /** A plaintext push's signature: the ingress binds it to this body (its `signature` does not cover it). */
  plainSignature?: string;
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

// The envelope's Encrypt, found without parsing the body: nothing is parsed before msg_signature is checked.
const XML_ENCRYPT = /<Encrypt>\s*(?:<!\[CDATA\[([^\]]*)\]\]>|([^<]*))\s*<\/Encrypt>/g;
const JSON_ENCRYPT = /"Encrypt"\s*:\s*"((?:[^"\\]|\\.)*)"/g;
/** More candidates than a genuine envelope can hold are not tried (each costs a SHA-1 over it). */
const MAX_CANDIDATES = 4;

/**
 * The values an encrypted push's envelope gives for `Encrypt`, found by pattern, not by parsing. Usually one;
 * a compat-mode XML body can show more when a user's own text contains the element (its CDATA copy of the
 * message sits beside the real one), so the caller keeps the one msg_signature verifies.
 */
function encryptCandidates(body: string, format: PushFormat): string[] {
  const found: string[] = [];
  for (const match of body.matchAll(format === 'xml' ? XML_ENCRYPT : JSON_ENCRYPT)) {
    if (found.length === MAX_CANDIDATES) throw new MessageFormatError('the envelope has too many Encrypt values');
    let value = match[1] ?? match[2] ?? '';
    if (format === 'json' && value.includes('\\')) {
      try {
        value = JSON.parse(`"${value}"`) as string;
      } catch {
        continue;
      }
    }
    if (value !== '') found.push(value);
  }
  if (found.length === 0) throw new MessageFormatError('encrypted push without Encrypt');
  return found;
}

// Compat mode carries the message's plaintext fields beside Encrypt; safe mode only ToUserName.
const COMPAT_FIELD = { xml: /<MsgType>/, json: /"MsgType"\s*:/ };

/**
 * Authenticates and opens one push. Plaintext checks `signature`, then parses (the caller binds the signature
 * to the body). Compat and safe take `Encrypt` from the envelope without parsing it, check `msg_signature`
 * over it first, then decrypt and use only the decrypted copy. Throws SignatureError, DecryptError,
 * MessageFormatError or PolicyError.
 */
export function receivePush(account: IngressAccount, query: PushQuery, body: string): ReceivedPush {
  const { config } = account;
  if (query.encrypt_type === undefined) {
    if (config.security === 'safe') {
      throw new PolicyError('this account accepts only encrypted (safe or compat) pushes');
    }
    verifySignature(config.token, query);
    const format = detectFormat(body);
    return {
      message: parseMessage(body, format),
      mode: 'plain',
      format,
      plainSignature: (query.signature as string).toLowerCase(),
    };
  }
  if (query.encrypt_type !== 'aes') throw new MessageFormatError('encrypt_type must be "aes"');
  if (!account.key) throw new PolicyError('encrypted push, but this account has no EncodingAESKey configured');
  const format = detectFormat(body);
  const encrypt = verifyMsgSignature(config.token, query, encryptCandidates(body, format));
  const plaintext = decryptMessage(account.key, encrypt, config.appId);
  const mode: PushMode = COMPAT_FIELD[format].test(body) ? 'compat' : 'safe';
  // Decrypted with our key and the AppID checked: WeChat wrote it, no need to check the XML again.
  return { message: parseMessage(plaintext, detectFormat(plaintext), { validate: false }), mode, format };
}
