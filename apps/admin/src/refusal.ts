import { TokenUnavailableError, TransportError, WeChatApiError } from '@wx-kf/shared/api';
import { clip } from '@wx-kf/shared/log';

/** Longest reason a refusal answers, whatever the input: an error may quote the caller's bytes. */
const MAX_REASON = 200;

/**
 * A request the admin listener refuses: an HTTP status, a short `error` name and one line, answered as
 * `{ error, message }` by the app's one error handler. `statusCode` is the name Fastify and its plugins read.
 */
export class Refusal extends Error {
  override readonly name: string = 'Refusal';
  constructor(
    readonly statusCode: number,
    readonly error: string,
    message: string,
    /** Headers the answer carries (`Retry-After`). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/** No credentials, or the wrong ones (401). */
export class Unauthorized extends Refusal {
  override readonly name = 'Unauthorized';
  constructor(message: string) {
    super(401, 'unauthorized', message);
  }
}

/** Too many calls, or too many wrong logins, this minute (429 with Retry-After). */
export class RateLimited extends Refusal {
  override readonly name = 'RateLimited';
  constructor(seconds: number, what: string) {
    super(429, 'rate_limited', `${what}; try again in ${seconds} s`, { 'retry-after': String(seconds) });
  }
}

/** An appId that is not a configured account: 400 in a body, 404 in a path. */
export class UnknownAccount extends Refusal {
  override readonly name = 'UnknownAccount';
  constructor(status: 400 | 404) {
    super(status, 'account', 'appId must be a configured account');
  }
}

/** The user's send window or quota cannot carry the call (409, invariant 11). */
export class WindowRefusal extends Refusal {
  override readonly name = 'WindowRefusal';
  constructor(reason: string) {
    super(409, 'window', reason);
  }
}

/** The user is with a human agent (409, invariant 12). */
export class HandoffRefusal extends Refusal {
  override readonly name = 'HandoffRefusal';
  constructor() {
    super(409, 'handoff', 'the user is with a human agent; send with "ignoreHandoff": true to send anyway');
  }
}

/** The user has no grant of the notification's template (409): nothing was queued, WeChat was not asked. */
export class NoGrant extends Refusal {
  override readonly name = 'NoGrant';
  constructor(template: string, windowClosed = false) {
    const why = windowClosed ? "the user's window is closed and they have" : 'the user has';
    super(409, 'no_grant', `${why} no grant of template ${template}; "ignoreGrant": true sends anyway`);
  }
}

/** A notification's `data` breaks its kind's limit or does not fit its template (422, naming the key). */
export class DataRefusal extends Refusal {
  override readonly name = 'DataRefusal';
  constructor(problem: string) {
    super(422, 'data', problem);
  }
}

/** An Idempotency-Key already used with another body (422). */
export class IdempotencyConflict extends Refusal {
  override readonly name = 'IdempotencyConflict';
  constructor() {
    super(422, 'idempotency_key', 'this Idempotency-Key was used with another body');
  }
}

/** An Idempotency-Key still held by a request being handled (409, retry in a second). */
export class IdempotencyPending extends Refusal {
  override readonly name = 'IdempotencyPending';
  constructor() {
    super(
      409,
      'idempotency_pending',
      'a request with this Idempotency-Key is still being handled; retry to get its job',
      { 'retry-after': '1' },
    );
  }
}

/** An answer to a refused request: its status, its JSON body and its headers. */
export interface RefusalAnswer {
  status: number;
  body: { error: string; message: string } & Record<string, unknown>;
  headers: Readonly<Record<string, string>>;
}

/** The reason, cut to MAX_REASON characters. */
export const bounded = (reason: string): string => clip(reason, MAX_REASON);

/**
 * The answer for a refusal we know: ours, and WeChat's (its errcode's row gives the status; it keeps `errcode` and
 * `errmsg`); undefined for anything else. The admin API and the queue CLI both read it.
 */
export function describeError(error: unknown): RefusalAnswer | undefined {
  if (error instanceof Refusal) {
    return {
      status: error.statusCode,
      body: { error: error.error, message: bounded(error.message) },
      headers: error.headers,
    };
  }
  if (error instanceof WeChatApiError) {
    const body = {
      error: 'wechat',
      errcode: error.errcode,
      errmsg: error.errmsg.slice(0, MAX_REASON),
      message: bounded(error.message),
    };
    return { status: error.rule.http, body, headers: {} }; // the row of the client's own channel
  }
  if (error instanceof TransportError || error instanceof TokenUnavailableError) {
    return { status: 502, body: { error: 'wechat_unavailable', message: bounded(error.message) }, headers: {} };
  }
  return undefined;
}
