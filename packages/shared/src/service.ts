import { type Config, ConfigError, loadDotEnv, printConfigError, readConfig } from './config/index.js';
import { createLogger, errorMessage, type Logger } from './log.js';
import { startTracing, stopTracing, type TracingStarted } from './tracing/index.js';

export interface RunningService {
  close(): Promise<void>;
}

/**
 * Runs a process's main: loads the configuration (one line per problem and exit 1 when it is bad; one warning
 * logged per deprecated variable name), starts tracing when OTEL_* ask for it, starts the service, and on
 * SIGTERM/SIGINT closes it gracefully within `graceMs` (the last spans exported) before exiting.
 */
export async function runService(
  name: string,
  start: (config: Config, logger: Logger) => Promise<RunningService>,
  options: { graceMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<void> {
  let config: Config;
  let warnings: string[];
  if (!options.env) loadDotEnv();
  try {
    ({ config, warnings } = readConfig(options.env));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    printConfigError(name, error);
    process.exit(1);
  }
  // Before the logger (its lines carry trace ids) and before any queue (each carries the context of its jobs).
  const tracing = await startTracingSafely(name, config);
  const logger = createLogger(name, { level: config.logLevel });
  for (const warning of warnings) logger.warn(`config: ${warning}`);
  const replies = name === 'admin' ? undefined : replySources(config);
  if (replies) logger.warn(replies);
  if (tracing) logger.info(tracing, 'tracing: spans exported with OpenTelemetry');
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled rejection'));

  let service: RunningService;
  try {
    service = await start(config, logger);
  } catch (error) {
    if (error instanceof ConfigError) {
      printConfigError(name, error);
    } else {
      logger.fatal({ err: error }, `${name} failed to start`);
    }
    process.exit(1);
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, `${name} stopping`);
    const force = setTimeout(() => {
      logger.error(`${name} did not stop within ${options.graceMs ?? 30_000} ms; exiting`);
      process.exit(1);
    }, options.graceMs ?? 30_000);
    force.unref();
    try {
      await service.close();
      await stopTracing();
      logger.info(`${name} stopped`);
      process.exit(0);
    } catch (error) {
      logger.error({ err: error }, `${name} did not stop cleanly`);
      process.exit(1);
    }
  };
  // on, not once: a terminal's Ctrl-C also reaches us forwarded by pnpm; the second must not kill the drain.
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

/**
 * With a handler and reply rules both set, which one answers what (one line at start): the handler writes every
 * reply, and of the rules only their `transfer` rules act, answered by the ingress before the handler sees the
 * message. Undefined when only one of them is set.
 */
export function replySources(config: Pick<Config, 'handler' | 'replyRulesFile' | 'accounts'>): string | undefined {
  if (!config.handler) return undefined;
  const files = new Set(config.accounts.map((a) => a.replyRules ?? config.replyRulesFile).filter(Boolean));
  if (files.size === 0) return undefined;
  return (
    `replies: WECHAT_HANDLER ${config.handler} answers every message; of the reply rules (${[...files].join(', ')}) ` +
    'only the transfer rules act, answered by the ingress (transfer_customer_service) before the handler sees the ' +
    'message; their replies, ai and fallback are not used'
  );
}

/** Tracing is never a reason not to serve: an SDK that fails to start is reported and the service runs without. */
async function startTracingSafely(name: string, config: Config): Promise<TracingStarted | undefined> {
  try {
    return await startTracing(name, { ownSpans: [config.api.base, config.api.proxy] });
  } catch (error) {
    console.error(`${name}: tracing: not started (${errorMessage(error)})`);
    return undefined;
  }
}
