import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Config, ConfigError, loadConfig, loadDotEnv, redisFromEnv } from '@wx-kf/shared/config';
import { Conversations, DEFAULT_TIMELINE } from '@wx-kf/shared/conversation';
import type { StoredJobData } from '@wx-kf/shared/queue';
import { createRedis, type RedisClient, type RedisTarget } from '@wx-kf/shared/redis';
import type { Job } from 'bullmq';
import { Argument, Command, InvalidArgumentError } from 'commander';
import { clip, print, say, table, terminalSafe } from './cli-output.js';
import { registerKfCommands } from './kf-cli.js';
import { type AccountPause, JOB_STATES, OPERATOR_PAUSE, Queues } from './queues.js';
import { formatUser } from './user-format.js';

/** `1h`, `30m`, `7d`, `45s`, `500ms` → milliseconds. */
export function parseDuration(value: string): number {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(value.trim());
  if (!match) throw new InvalidArgumentError('must be a duration such as 30s, 15m, 1h or 7d');
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'ms'];
  return Number(match[1]) * unit;
}

/** An OpenID, as OPENID_PATTERN in @wx-kf/shared/wechat (not imported: it loads the whole protocol layer). */
const OPENID = /^[A-Za-z0-9_-]{1,64}$/;

/** A refusal the operator can act on: printed as one line, exit code 1. */
class CliError extends Error {}

/** The refusal for an appId that is not among the configured accounts. */
const unknownAccount = (appId: string, known: string[], outcome = '') =>
  new CliError(`unknown account "${clip(appId, 40)}" (configured: ${clip(known.join(', '), 200)})${outcome}`);

const firstLine = (s: string) => s.trim().split('\n')[0] ?? '';
/** ISO 8601 with the zone (UTC), for humans and JSON alike. */
const iso = (ms: number | undefined) => (ms ? new Date(ms).toISOString() : undefined);

interface ReplyLike {
  msgtype?: string;
  [field: string]: unknown;
}

/** One line per reply: its type and its text, title or media. */
function describeReply(item: ReplyLike): string {
  const body = (item.msgtype ? item[item.msgtype] : undefined) as Record<string, unknown> | undefined;
  const gist =
    body?.content ?? body?.title ?? body?.media_id ?? body?.file ?? body?.card_id ?? JSON.stringify(body ?? {});
  return clip(`${item.msgtype ?? '?'}: ${String(gist)}`, 120);
}

function summary(job: Job) {
  const data: StoredJobData = job.data;
  const message = data.message;
  return {
    id: job.id,
    queue: job.queueName,
    appId: data.appId,
    user: data.touser ?? message?.FromUserName,
    type: message
      ? message.Event
        ? `event ${message.Event}`
        : (message.MsgType ?? '?')
      : `${data.replies?.length ?? 0} replies`,
    attempts: job.attemptsMade,
    created: iso(job.timestamp),
    failedReason: job.failedReason || undefined,
  };
}

/** A job's replies, how many WeChat accepted, and how it ended. */
async function outcomeOf(job: Job, queues: Queues) {
  const data: StoredJobData = job.data;
  const state = await job.getState();
  // An inbound job keeps its plan only once part-sent; replies still owed move to the outbound job `<id>-r`.
  const handedOff = data.message ? await queues.find(`${job.id}-r`, queues.outbounds) : undefined;
  return {
    state,
    replies: data.replies ?? data.plan?.replies ?? (handedOff?.data as StoredJobData | undefined)?.replies,
    sent: data.sent ?? data.plan?.sent,
    result: job.returnvalue ?? undefined,
    failedReason: job.failedReason || undefined,
    finished: iso(job.finishedOn),
    retryJob: handedOff
      ? {
          id: handedOff.id,
          state: await handedOff.getState(),
          sent: (handedOff.data as StoredJobData).sent,
          failedReason: handedOff.failedReason || undefined,
        }
      : undefined,
  };
}

function outcomeLine(o: Awaited<ReturnType<typeof outcomeOf>>): string {
  if (o.failedReason) return `failed: ${o.failedReason}`;
  const result = o.result as { action?: string; replies?: number; sent?: number; reason?: string } | undefined;
  if (o.state !== 'completed' || !result?.action) return o.state;
  if (result.action === 'replied') return `replied: ${result.replies} sent`;
  if (result.action === 'handed_off')
    return `handed off after ${result.sent} of ${result.replies} sent (${result.reason}): see the retry job`;
  if (result.action === 'transferred') return 'transferred to 客服 (no replies)';
  if (result.action === 'none') return 'no replies (no rule matched)';
  if (result.action === 'handoff') return 'no replies: the user is with a human agent (handoff)';
  return `${result.action}`;
}

/** The commands, bound to one Redis connection; the configuration is loaded only by commands that need it. */
function buildProgram(redis: RedisClient, queues: Queues): Command {
  let config: Config | undefined;
  const accountsConfig = (): Config => {
    if (config) return config;
    try {
      config = loadConfig();
      return config;
    } catch (error) {
      const problem = error instanceof ConfigError ? error.problems[0] : (error as Error).message;
      throw new CliError(`cannot check --account: the configuration does not load (${problem})`);
    }
  };
  const configuredIds = (): string[] => {
    try {
      return accountsConfig().accounts.map((a) => a.appId);
    } catch {
      return []; // stats and paused work without a configuration: they list the pause keys in Redis
    }
  };
  const queueArg = (name: string | undefined) => {
    if (!name) return queues.all;
    const shards = queues.byName(name);
    if (!shards) throw new CliError(`unknown queue "${clip(name, 40)}" (inbound or outbound)`);
    return shards;
  };
  const pauseRows = (pauses: AccountPause[]) => {
    const t = table(['account', 'reason', 'until', 'detail']);
    for (const p of pauses) t.push([p.appId, p.reason, p.until ?? 'resume', clip(p.detail, 60)]);
    return t.toString();
  };

  const program = new Command('pnpm queues')
    .description(
      'Inspect and operate the wx-kf queues (inbound: stored pushes, each sending its replies; outbound: replies being retried, and the send API).',
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

  program
    .command('stats')
    .description('jobs per queue and state, and the accounts whose sends are paused')
    .option('--json', 'machine-readable output')
    .action(async (opts) => {
      const stats = await queues.stats();
      const pauses = await queues.allPauses();
      const accounts: Record<string, { paused: boolean } & Partial<Omit<AccountPause, 'appId'>>> = {};
      for (const appId of configuredIds()) accounts[appId] = { paused: false };
      for (const { appId, ...pause } of pauses) accounts[appId] = { paused: true, ...pause };
      print(opts.json, { queues: stats, accounts }, () => {
        const t = table(['queue', ...JOB_STATES, 'paused']);
        for (const [name, s] of Object.entries(stats))
          t.push([name, ...JOB_STATES.map((st) => s[st]), s.paused ? 'yes' : 'no']);
        const a = table(['account', 'paused']);
        for (const [appId, s] of Object.entries(accounts))
          a.push([appId, s.paused ? `yes (${s.reason}${s.until ? ` until ${s.until}` : ''})` : 'no']);
        return Object.keys(accounts).length ? `${t.toString()}\n${a.toString()}` : t.toString();
      });
    });

  program
    .command('paused')
    .description('accounts whose sends are paused: by 45009 (expires by itself) or by an operator (until resumed)')
    .option('--json', 'machine-readable output')
    .action(async (opts) => {
      const pauses = await queues.allPauses();
      print(opts.json, pauses, () => (pauses.length ? pauseRows(pauses) : 'no account is paused'));
    });

  program
    .command('list')
    .description('jobs in a state, newest first')
    .addArgument(new Argument('<state>', 'job state').choices(JOB_STATES))
    .option('--queue <name>', 'inbound or outbound (default: both)')
    .option('--limit <n>', 'at most this many per queue', (v) => Number.parseInt(v, 10), 20)
    .option('--json', 'machine-readable output')
    .action(async (state: (typeof JOB_STATES)[number], opts) => {
      const jobs = (await Promise.all(queueArg(opts.queue).map((q) => q.getJobs([state], 0, opts.limit - 1)))).flat();
      const rows = jobs.map(summary);
      print(opts.json, rows, () => {
        const t = table(['id', 'queue', 'appId', 'user', 'type', 'attempts', 'created', 'failed reason']);
        for (const r of rows)
          t.push([
            r.id ?? '',
            r.queue,
            r.appId ?? '',
            r.user ?? '',
            r.type,
            r.attempts,
            r.created ?? '',
            clip(r.failedReason ?? '', 80),
          ]);
        return rows.length ? t.toString() : `no ${state} jobs`;
      });
    });

  program
    .command('show <jobId>')
    .description("a job's message, its replies and how it ended, attempts and the error of each failed attempt")
    .option('--json', 'machine-readable output')
    .action(async (jobId: string, opts) => {
      const job = await queues.find(jobId);
      if (!job) throw new CliError(`no job ${clip(jobId, 80)} in inbound or outbound`);
      const outcome = await outcomeOf(job, queues);
      const detail = {
        ...summary(job),
        ...outcome,
        data: job.data,
        // One line per failed attempt, newest last: for sends, "errcode errmsg".
        history: (job.stacktrace ?? []).map(firstLine),
      };
      const message = (job.data as StoredJobData).message;
      print(opts.json, detail, () =>
        [
          `job ${detail.id} (${detail.queue}, ${detail.state}) — ${detail.appId} / ${detail.user}`,
          `created ${detail.created}${detail.finished ? `, finished ${detail.finished}` : ''}, attempts ${detail.attempts}`,
          message ? `message: ${detail.type}${message.Content ? ` "${clip(String(message.Content), 200)}"` : ''}` : '',
          detail.replies
            ? `replies (${detail.replies.length}${detail.sent !== undefined ? `, ${detail.sent} accepted by WeChat` : ''}):\n${detail.replies.map((r, i) => `  ${i + 1}. ${describeReply(r)}`).join('\n')}`
            : '',
          `outcome: ${outcomeLine(outcome)}`,
          detail.retryJob
            ? `retry job ${detail.retryJob.id}: ${detail.retryJob.state}, ${detail.retryJob.sent} sent${detail.retryJob.failedReason ? `, failed: ${detail.retryJob.failedReason}` : ''}`
            : '',
          detail.history.length ? `attempt errors:\n${detail.history.map((h) => `  - ${h}`).join('\n')}` : '',
        ]
          .filter(Boolean)
          .join('\n'),
      );
    });

  program
    .command('retry [jobId]')
    .description('retry one failed job, or every failed job with --failed')
    .option('--failed', 'retry all failed jobs in both queues')
    .action(async (jobId: string | undefined, opts) => {
      if (opts.failed) {
        const counts: string[] = [];
        let total = 0;
        for (const q of queues.all) {
          const n = await q.getFailedCount();
          if (n > 0) await q.retryJobs({ state: 'failed' });
          counts.push(`${q.name} ${n}`);
          total += n;
        }
        say(`retried ${total} failed job(s) (${counts.join(', ')})`);
        return;
      }
      if (!jobId) throw new CliError('give a job id, or --failed');
      const job = await queues.find(jobId);
      if (!job) throw new CliError(`no job ${clip(jobId, 80)} in inbound or outbound`);
      if (!(await job.isFailed())) throw new CliError(`job ${jobId} is ${await job.getState()}, not failed`);
      await job.retry();
      say(`retried ${jobId}`);
    });

  program
    .command('remove <jobId>')
    .description('remove a job')
    .action(async (jobId: string) => {
      const job = await queues.find(jobId);
      if (!job) throw new CliError(`no job ${clip(jobId, 80)} in inbound or outbound`);
      await job.remove();
      say(`removed ${jobId}`);
    });

  program
    .command('pause')
    .description('stop processing (all), or hold one configured account’s sends until `resume --account`')
    .option('--account <appId>', 'only this account’s sends (no expiry: it lasts until resumed)')
    .action(async (opts) => {
      if (!opts.account) {
        for (const q of queues.all) await q.pause();
        say('paused inbound and outbound');
        return;
      }
      const appId: string = opts.account;
      const known = accountsConfig().accounts.map((a) => a.appId);
      if (!known.includes(appId)) throw unknownAccount(appId, known, '; nothing paused');
      // No expiry on purpose: an operator's pause holds until an operator resumes it (a 45009 pause expires).
      await redis.set(queues.keys.paused(appId), OPERATOR_PAUSE);
      say(
        `paused sends of ${appId} until \`pnpm queues resume --account ${appId}\` (within a second its replies wait as delayed outbound jobs)`,
      );
    });

  program
    .command('resume')
    .description('resume processing (all), or one account’s sends (its delayed outbound jobs are promoted)')
    .option('--account <appId>', 'only this account’s sends')
    .action(async (opts) => {
      if (!opts.account) {
        for (const q of queues.all) await q.resume();
        say('resumed inbound and outbound');
        return;
      }
      const appId: string = opts.account;
      const removed = await redis.del(queues.keys.paused(appId));
      let promoted = 0;
      for (const job of (await Promise.all(queues.outbounds.map((q) => q.getJobs(['delayed'])))).flat()) {
        if ((job.data as StoredJobData).appId === appId) {
          await job.promote();
          promoted++;
        }
      }
      say(
        `${removed ? 'resumed' : 'was not paused:'} sends of ${clip(appId, 40)} (${promoted} delayed job(s) promoted)`,
      );
    });

  program
    .command('clean <state>')
    .description('remove jobs in a state (completed, failed, delayed, waiting) older than a duration')
    .requiredOption('--older-than <duration>', 'e.g. 1h, 7d', parseDuration)
    .option('--queue <name>', 'inbound or outbound (default: both)')
    .action(async (state: string, opts) => {
      const allowed = ['completed', 'failed', 'delayed', 'wait', 'waiting'];
      if (!allowed.includes(state)) throw new CliError(`cannot clean "${clip(state, 40)}" (${allowed.join(', ')})`);
      let removed = 0;
      for (const q of queueArg(opts.queue)) {
        removed += (await q.clean(opts.olderThan, 100_000, (state === 'waiting' ? 'wait' : state) as 'completed'))
          .length;
      }
      say(`removed ${removed} ${state} job(s) older than ${opts.olderThan / 1000} s`);
    });

  program
    .command('user <appId> <openid>')
    .description("a user's send window (open until, sends left, what opened it) and timeline, newest last")
    .option('--json', 'machine-readable output')
    .action(async (appId: string, openid: string, opts) => {
      if (!OPENID.test(openid)) throw new CliError(`"${clip(openid, 70)}" is not an OpenID`);
      let timeline = DEFAULT_TIMELINE;
      let known: string[] | undefined;
      try {
        // The age cap and the accounts, when the configuration loads (without it, any appId is looked up).
        const config = accountsConfig();
        timeline = config.timeline;
        known = config.accounts.map((a) => a.appId);
      } catch {}
      if (known && !known.includes(appId)) throw unknownAccount(appId, known);
      const view = await new Conversations(redis, { timeline }).view(appId, openid);
      print(opts.json, view, () => formatUser(appId, openid, view));
    });

  registerKfCommands(program, redis, accountsConfig);
  return program;
}

/** Runs the CLI on `args` (without node and the script) and resolves with the exit code. */
export async function main(args: string[]): Promise<number> {
  if (args.length === 0) {
    console.error(
      'queues: give a command (stats, paused, list, show, retry, remove, pause, resume, clean, user, agents, session, sessions); --help lists them',
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
    await buildProgram(redis, queues).parseAsync(args, { from: 'user' });
    return 0;
  } catch (error) {
    const code = (error as { code?: string }).code ?? '';
    if (code === 'commander.helpDisplayed' || code === 'commander.version') return 0;
    if (code.startsWith('commander.')) return 1; // commander printed the reason (one line, see outputError)
    // Messages may quote WeChat's answers or job data: terminal-safe like every human line.
    console.error(terminalSafe(`queues: ${clip(firstLine((error as Error).message ?? String(error)), 300)}`));
    return 1;
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
