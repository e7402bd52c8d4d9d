// `pnpm queues <command>`: wires the command groups (cli/*-commands.ts) to one Redis connection and runs them.
// It loads no pino, HTTP, metrics or parser code at start: its start time is what an operator waits for.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadDotEnv, redisFromEnv } from '@wx-kf/shared/config';
import { createRedis, type RedisTarget } from '@wx-kf/shared/redis';
import { Command, CommanderError } from 'commander';
import { CliConfig, type CliContext, firstLine } from './cli/context.js';
import { registerKfCommands } from './cli/kf-commands.js';
import { registerQueueCommands } from './cli/queues-commands.js';
import { registerUserCommands } from './cli/users-commands.js';
import { registerWeComCommands } from './cli/wecom-commands.js';
import { clip, terminalSafe } from './cli-output.js';
import { Queues } from './queues.js';

export { parseDuration } from './cli/queues-commands.js';

/** Every command, bound to one context, in the order `--help` lists them. */
function buildProgram(ctx: CliContext): Command {
  const program = new Command('pnpm queues')
    .description(
      'Inspect and operate the wx-kf queues (inbound: stored pushes, each sending its replies; outbound: replies being retried, and the send API), users, Official Account agents and sessions, and WeCom customer service’s pull (wecom).',
    )
    .exitOverride()
    .configureOutput({
      // Usage errors as one line (commander's reason; no usage dump), like every other refusal.
      outputError: (message, write) =>
        write(
          terminalSafe(
            `queues: ${message
              .replace(/^error: /, '')
              .replace(/\s*\n\s*/g, ' ')
              .trim()}\n`,
          ),
        ),
    });
  registerQueueCommands(program, ctx);
  registerUserCommands(program, ctx);
  registerKfCommands(program, ctx);
  registerWeComCommands(program, ctx);
  return program;
}

/** The exit code for what a command threw, with its one line on stderr when commander has not printed it. */
function failure(error: unknown): number {
  if (error instanceof CommanderError) {
    // Help and version end well; any other usage error was printed by commander (one line, see outputError).
    return error.code === 'commander.helpDisplayed' || error.code === 'commander.version' ? 0 : 1;
  }
  // Messages may quote WeChat's answers or job data: terminal-safe like every human line.
  const message = error instanceof Error ? error.message : String(error);
  console.error(terminalSafe(`queues: ${clip(firstLine(message), 300)}`));
  return 1;
}

/** Runs the CLI on `args` (without node and the script) and resolves with the exit code. */
export async function main(args: string[]): Promise<number> {
  if (args.length === 0) {
    console.error(
      'queues: give a command (stats, paused, list, show, retry, remove, pause, resume, clean, user, forget, agents, session, sessions, wecom); --help lists them',
    );
    return 1;
  }
  loadDotEnv();
  let target: RedisTarget;
  try {
    target = redisFromEnv();
  } catch (error) {
    const problems = error instanceof ConfigError ? error.problems : [String(error)];
    console.error(terminalSafe(`queues: config: ${problems.join('; ')}`));
    return 1;
  }
  const redis = createRedis(target, 'client');
  const queues = new Queues(redis);
  try {
    await buildProgram({ redis, queues, config: new CliConfig() }).parseAsync(args, { from: 'user' });
    return 0;
  } catch (error) {
    return failure(error);
  } finally {
    await queues.close();
    redis.disconnect();
  }
}

// Run only as a script (`pnpm queues`): importing this module connects to nothing.
const script = (() => {
  try {
    return process.argv[1] ? realpathSync(process.argv[1]) : '';
  } catch {
    return '';
  }
})();
if (script === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
