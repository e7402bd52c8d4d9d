import { type Bindings, type ChildLoggerOptions, type Logger, type LoggerOptions, pino } from 'pino';
import { isRecord } from './record.js';
import { logMixin } from './tracing/index.js';

export type { Logger } from 'pino';

// Secrets must never reach a log line: fields with these names are censored at the top level and two levels
// down (`{ account: { appSecret } }`, `req.headers.authorization`), as is any nested `query` (`req.query`).
const SECRETS = new Set([
  'appSecret',
  'secret',
  'token',
  'aesKey',
  'access_token',
  'signature',
  'msg_signature',
  'password',
  'authorization',
  'apiKey', // a model endpoint's key (AI_API_KEY, an account's ai.apiKey)
]);
const CENSOR = '[redacted]';

/**
 * `fields` with its secrets censored: a copy when there is one, else `fields` itself. Errors are serialized
 * first, so their own properties are censored too. (pino's path redaction does the same at about 10 µs a line
 * for these paths; this costs a fraction of a µs on the flat lines of the hot paths.)
 */
function censorSecrets(fields: Record<string, unknown>, depth = 0): Record<string, unknown> {
  let copy = fields;
  for (const key in fields) {
    const value = fields[key];
    let safe = value;
    if (SECRETS.has(key) || (depth > 0 && key === 'query')) safe = CENSOR;
    else if (depth < 2 && isRecord(value) && !ArrayBuffer.isView(value)) {
      safe = censorSecrets(value instanceof Error ? pino.stdSerializers.err(value) : value, depth + 1);
    }
    if (safe !== value) {
      if (copy === fields) copy = { ...fields };
      copy[key] = safe;
    }
  }
  return copy;
}

const WARN = 40;
let stdout: ReturnType<typeof pino.destination> | undefined;

/**
 * stdout, shared by every logger of the process and written in batches: a write per 4 KiB and at least every
 * 100 ms instead of a write per line (the per-line write cost more CPU than anything else a message needs).
 * Warnings and errors are written at once, and what is buffered is written when the process exits.
 */
function batchedStdout(): ReturnType<typeof pino.destination> {
  if (!stdout) {
    const stream = pino.destination({ dest: 1, sync: true, minLength: 4096, periodicFlush: 100 });
    process.once('exit', () => stream.flushSync());
    stdout = stream;
  }
  return stdout;
}

/**
 * The one logger factory: pino JSON to stdout (or `destination`), secrets redacted. A line logged in a span
 * carries its `trace_id` and `span_id` when tracing was started before the logger was made.
 */
export function createLogger(
  name: string,
  options: { level?: string; destination?: NodeJS.WritableStream } = {},
): Logger {
  const config: LoggerOptions = {
    name,
    level: options.level ?? 'info',
    formatters: { log: censorSecrets },
    // Errors arrive here already serialized (and censored) by censorSecrets; serialize only those it did not see.
    serializers: { err: (err: unknown) => (err instanceof Error ? pino.stdSerializers.err(err) : err) },
  };
  const mixin = logMixin();
  if (mixin) config.mixin = mixin;
  let logger: Logger;
  if (options.destination) logger = pino(config, options.destination);
  else {
    const destination = batchedStdout();
    config.hooks = {
      logMethod(args, method, level) {
        method.apply(this, args);
        if (level >= WARN) destination.flush();
      },
    };
    logger = pino(config, destination);
  }
  // Child bindings skip the log formatter: censor them on the way in (children inherit this `child`).
  const child = logger.child;
  logger.child = function <Levels extends string = never>(
    this: Logger,
    bindings: Bindings,
    options?: ChildLoggerOptions<Levels>,
  ) {
    return child.call<Logger, [Bindings, ChildLoggerOptions<Levels> | undefined], Logger<Levels>>(
      this,
      censorSecrets(bindings),
      options,
    );
  };
  return logger;
}

/** An error's message (anything thrown that is not an Error, as text): what a log line or an answer quotes. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** `text` cut to at most `max` characters (an ellipsis marks the cut): what an answer or a log line may quote. */
export function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
