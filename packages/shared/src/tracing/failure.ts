import { TokenUnavailableError, TransportError, WeChatApiError } from '../api/errors.js';
import type { SpanAttributes } from './index.js';

/** How a span records an error that ended it. */
export interface Failure {
  /** False for BullMQ's DelayedError: the job waits (its turn, a pause), nothing failed. */
  failed: boolean;
  attributes: SpanAttributes;
}

const NAME = /^[A-Za-z][\w.]{0,63}$/;

/** An error's class name as a span may hold it (anything else is `Error`). */
export const safeName = (name: string | undefined): string => (name && NAME.test(name) ? name : 'Error');

/**
 * What a span keeps of an error: its kind (`error.type`) and, for WeChat's refusals, the errcode; never its
 * message, which may quote what a job, a handler or an answer held (an OpenID, a message, a token).
 */
export function failureOf(error: unknown): Failure {
  if (error instanceof WeChatApiError) {
    return {
      failed: true,
      attributes: {
        'error.type': 'wechat_errcode',
        'wechat.errcode': error.errcode,
        'wxkf.errcode.action': error.action,
      },
    };
  }
  if (error instanceof TokenUnavailableError) {
    return { failed: true, attributes: { 'error.type': 'token_unavailable', 'wechat.errcode': error.errcode } };
  }
  if (error instanceof TransportError) return { failed: true, attributes: { 'error.type': `transport_${error.kind}` } };
  const name = error instanceof Error ? error.name : undefined;
  if (name === 'DelayedError') return { failed: false, attributes: { 'wxkf.delayed': true } };
  return { failed: true, attributes: { 'error.type': safeName(name) } };
}
