import { type Config, ConfigError, readConfig } from '@wx-kf/shared/config';
import type { RedisClient } from '@wx-kf/shared/redis';
import type { Queue } from 'bullmq';
import { InvalidArgumentError } from 'commander';
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

/**
 * The queues a command works on: every shard of `--queue <name>` (of both queues without it), read as one; only
 * those of `--shard <n>` when asked for.
 */
export function queueOption(queues: Queues, name: string | undefined, shard?: number): Queue[] {
  const named = name ? queues.byName(name) : queues.all;
  if (!named) throw new CliError(`unknown queue "${clip(name ?? '', 40)}" (inbound or outbound)`);
  if (shard === undefined) return named;
  try {
    return queues.ofShard(named, shard);
  } catch (error) {
    throw new CliError(error instanceof Error ? error.message : String(error));
  }
}

/** `--shard <n>`: a shard number (checked against the layout by queueOption). */
export function parseShard(value: string): number {
  if (!/^\d{1,4}$/.test(value.trim())) throw new InvalidArgumentError('must be a shard number (0, 1, …)');
  return Number(value);
}

/** `--limit <n>`: a positive count. */
export function parseLimit(value: string): number {
  const n = Number(value);
  if (!/^\d{1,6}$/.test(value.trim()) || n < 1) throw new InvalidArgumentError('must be a count of 1 or more');
  return n;
}
