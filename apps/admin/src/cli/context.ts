import { type Config, ConfigError, readConfig } from '@wx-kf/shared/config';
import type { RedisClient } from '@wx-kf/shared/redis';
import type { Queue } from 'bullmq';
import { clip, terminalSafe } from '../cli-output.js';
import type { Queues } from '../queues.js';

/** A refusal the operator can act on: printed as one line, exit code 1. */
export class CliError extends Error {}

/** The refusal for an appId that is not among the configured accounts. */
export const unknownAccount = (appId: string, known: readonly string[], outcome = '') =>
  new CliError(`unknown account "${clip(appId, 40)}" (configured: ${clip(known.join(', '), 200)})${outcome}`);

/** The first line of a text (an error's message, a stack trace). */
export const firstLine = (s: string) => s.trim().split('\n')[0] ?? '';

/** A configuration warning on stderr, one line, as the services log theirs (`config: …`). */
const warnOnStderr = (warning: string) => console.error(terminalSafe(`queues: config: ${warning}`));

/**
 * The configuration, loaded once and only by the commands that need it (the accounts, the timeline's cap, the
 * WeChat credentials): the queue commands work with REDIS_URL alone. Its warnings (an old variable name) are
 * printed when it loads.
 */
export class CliConfig {
  #config: Config | undefined;

  constructor(
    private readonly env: NodeJS.ProcessEnv = process.env,
    private readonly warn: (warning: string) => void = warnOnStderr,
  ) {}

  /** The whole configuration; a CliError when it does not load. */
  get(): Config {
    if (this.#config) return this.#config;
    try {
      const { config, warnings } = readConfig(this.env);
      for (const warning of warnings) this.warn(warning);
      this.#config = config;
      return config;
    } catch (error) {
      const problem =
        error instanceof ConfigError ? error.problems[0] : error instanceof Error ? error.message : String(error);
      throw new CliError(`cannot check --account: the configuration does not load (${problem})`);
    }
  }

  /** The configuration, or undefined when it does not load (for commands that also work without one). */
  ifLoads(): Config | undefined {
    try {
      return this.get();
    } catch {
      return undefined;
    }
  }
}

/** What every command group is given: one Redis connection, the queues on it, and the configuration. */
export interface CliContext {
  redis: RedisClient;
  queues: Queues;
  config: CliConfig;
}

/** The shards of `--queue <name>`, or every queue without it. */
export function queueOption(queues: Queues, name: string | undefined): Queue[] {
  if (!name) return queues.all;
  const shards = queues.byName(name);
  if (!shards) throw new CliError(`unknown queue "${clip(name, 40)}" (inbound or outbound)`);
  return shards;
}
