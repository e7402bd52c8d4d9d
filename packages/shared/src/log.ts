import { type Logger, type LoggerOptions, pino } from 'pino';

export type { Logger } from 'pino';

// Secrets must never reach a log line; these paths are censored wherever they appear.
const REDACT = [
  'appSecret',
  'secret',
  'token',
  'aesKey',
  'access_token',
  'signature',
  'msg_signature',
  'password',
  'authorization',
  '*.appSecret',
  '*.secret',
  '*.token',
  '*.aesKey',
  '*.access_token',
  '*.signature',
  '*.msg_signature',
  '*.password',
  '*.authorization',
  'req.headers.authorization',
  'req.query',
];

/** The one logger factory: pino JSON to stdout (or `destination`), secrets redacted. */
export function createLogger(
  name: string,
  options: { level?: string; destination?: NodeJS.WritableStream } = {},
): Logger {
  const config: LoggerOptions = {
    name,
    level: options.level ?? 'info',
    redact: { paths: REDACT, censor: '[redacted]' },
  };
  return options.destination ? pino(config, options.destination) : pino(config);
}
