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

/** The query's `signature` (lower case) when it is valid for this token, else undefined (nothing to bind). */
export function validSignature(token: string, query: PushQuery): string | undefined {
  try {
    verifySignature(token, query);
    return query.signature?.toLowerCase();
  } catch {
    return undefined;
  }
}

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
  /**
   * The push's valid `signature` (lower case), which covers token, timestamp and nonce but never the body: the
   * ingress binds it to this body, so nobody can reuse it with another (a plaintext POST, or an encrypted push's
   * query with `encrypt_type` and `msg_signature` dropped). Not computed for an encrypted push to an account that
   * takes only encrypted ones: there a captured signature can carry nothing.
   */
  signature?: string | undefined;
}

/** Checks the push's timestamp against our clock; blunts replays of a captured signature. */
export function checkTimestamp(timestamp: string | undefined, toleranceSeconds: number, nowMs = Date.now()): void {
  const ts = Number(timestamp);
  if (!timestamp || !Number.isInteger(ts)) throw new SignatureError('timestamp is missing or not unix seconds');
  if (Math.abs(nowMs / 1000 - ts) > toleranceSeconds) {
    throw new SignatureError(`timestamp is more than ${toleranceSeconds} s away from our clock`);
  }
}

const [SLASH, QUESTION, BANG] = ['/', '?', '!'].map((c) => c.charCodeAt(0));

/**
 * The `Encrypt` of an XML envelope: the element that is a child of the root, found in one linear pass without
 * parsing (nothing is parsed before msg_signature is checked). CDATA sections, comments and deeper elements are
 * skipped whole, so an `<Encrypt>` a user typed into a compat push's plaintext copy is never taken for it.
 */
function xmlEnvelopeEncrypt(body: string): string | undefined {
  const endOf = (token: string, from: number) => {
    const at = body.indexOf(token, from);
    if (at === -1) throw new MessageFormatError('the envelope is not well-formed XML');
    return at + token.length - 1;
  };
  let depth = 0;
  let found: string | undefined;
  let i = body.indexOf('<');
  while (i !== -1) {
    let end: number;
    if (body.startsWith('<![CDATA[', i)) end = endOf(']]>', i + 9);
    else if (body.startsWith('<!--', i)) end = endOf('-->', i + 4);
    else {
      end = endOf('>', i + 1);
      const next = body.charCodeAt(i + 1);
      if (next === SLASH) depth--;
      else if (next !== QUESTION && next !== BANG && body.charCodeAt(end - 1) !== SLASH) {
        if (depth === 1 && body.startsWith('Encrypt', i + 1) && body.slice(i + 1, end).trim() === 'Encrypt') {
          if (found !== undefined) throw new MessageFormatError('the envelope has more than one Encrypt');
          const close = endOf('</Encrypt>', end);
          const text = body.slice(end + 1, close - 9).trim();
          found = text.startsWith('<![CDATA[') && text.endsWith(']]>') ? text.slice(9, -3) : text;
          end = close;
        } else depth++;
      }
    }
    i = body.indexOf('<', end + 1);
  }
  return found;
}

/** The index of the quote that ends the JSON string starting at `start`. */
function jsonStringEnd(body: string, start: number): number {
  for (let i = start + 1; i < body.length; i++) {
    const c = body.charCodeAt(i);
    if (c === 0x5c) i++;
    else if (c === 0x22) return i;
  }
  throw new MessageFormatError('the envelope is not well-formed JSON');
}

/** A JSON string literal's value; MessageFormatError for a bad escape. */
function jsonString(literal: string): string {
  let value: unknown;
  try {
    value = JSON.parse(literal);
  } catch {
    value = undefined;
  }
  if (typeof value !== 'string') throw new MessageFormatError('Encrypt is not a valid JSON string');
  return value;
}

const skipSpace = (body: string, i: number) => {
  while (i < body.length && /\s/.test(body.charAt(i))) i++;
  return i;
};

/** The `Encrypt` member of a JSON envelope's top-level object, in one linear pass (strings are skipped whole). */
function jsonEnvelopeEncrypt(body: string): string | undefined {
  let depth = 0;
  let found: string | undefined;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
    else if (c === '"') {
      const end = jsonStringEnd(body, i);
      const j = skipSpace(body, end + 1);
      if (depth === 1 && body[j] === ':' && body.slice(i, end + 1) === '"Encrypt"') {
        const v = skipSpace(body, j + 1);
        if (body[v] !== '"') throw new MessageFormatError('Encrypt is not a string');
        if (found !== undefined) throw new MessageFormatError('the envelope has more than one Encrypt');
        const vEnd = jsonStringEnd(body, v);
        found = jsonString(body.slice(v, vEnd + 1));
        i = vEnd;
      } else i = end;
    }
  }
  return found;
}

/**
 * The envelope's own `Encrypt`; MessageFormatError when there is none (or more than one). Linear in the body.
 * WeChat's encrypted pushes and WeCom's callbacks (routes/wecom.ts) both take it from here.
 */
export function envelopeEncrypt(body: string, format: PushFormat): string {
  const found = format === 'xml' ? xmlEnvelopeEncrypt(body) : jsonEnvelopeEncrypt(body);
  if (!found) throw new MessageFormatError('encrypted push without Encrypt');
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
    return { message: parseMessage(body, format), mode: 'plain', format, signature: query.signature?.toLowerCase() };
  }
  if (query.encrypt_type !== 'aes') throw new MessageFormatError('encrypt_type must be "aes"');
  if (!account.key) throw new PolicyError('encrypted push, but this account has no EncodingAESKey configured');
  const format = detectFormat(body);
  const encrypt = verifyMsgSignature(config.token, query, envelopeEncrypt(body, format));
  const plaintext = decryptMessage(account.key, encrypt, config.appId);
  const mode: PushMode = COMPAT_FIELD[format].test(body) ? 'compat' : 'safe';
  // Decrypted with our key and the AppID checked: WeChat wrote it, no need to check the XML again.
  const message = parseMessage(plaintext, detectFormat(plaintext), { validate: false });
  // Its `signature` (another SHA-1) matters only where a captured one could carry a body (the route asks).
  return {
    message,
    mode,
    format,
    signature: config.security === 'safe' ? undefined : validSignature(config.token, query),
  };
}
