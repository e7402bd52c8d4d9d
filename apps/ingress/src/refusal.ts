import { clip } from '@wx-kf/shared/log';
import { DecryptError, MessageFormatError, SignatureError } from '@wx-kf/shared/wechat';
import { UnavailableError } from './push-store.js';
import { PolicyError } from './receive.js';

/** Longest reason a refusal answers or logs, whatever the input: an error may quote the sender's bytes. */
const MAX_REASON = 200;

/** The reason, cut to MAX_REASON characters. */
export const bounded = (reason: string): string => clip(reason, MAX_REASON);

export interface Refusal {
  status: number;
  error: string;
  message: string;
}

/** The HTTP status and short reason for a push we refuse, by the error's type. */
export function refusal(error: unknown): Refusal {
  const r = refusalOf(error);
  return { ...r, message: bounded(r.message) };
}

function refusalOf(error: unknown): Refusal {
  if (error instanceof SignatureError) return { status: 401, error: 'signature', message: error.message };
  if (error instanceof DecryptError) return { status: 400, error: 'decrypt', message: error.message };
  if (error instanceof MessageFormatError) return { status: 400, error: 'format', message: error.message };
  if (error instanceof PolicyError) return { status: 403, error: 'policy', message: error.message };
  if (error instanceof UnavailableError) {
    return { status: 503, error: 'unavailable', message: 'the push could not be stored; WeChat will retry' };
  }
  return { status: 500, error: 'internal', message: 'internal error' };
}
