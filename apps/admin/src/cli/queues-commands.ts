import type { StoredJobData } from '@wx-kf/shared/queue';
import { Argument, type Command, InvalidArgumentError } from 'commander';
import { clip, print, say, table } from '../cli-output.js';
import { type AccountPause, JOB_STATES, type JobState, newestFirst, OPERATOR_PAUSE } from '../queues.js';
import { type CliContext, CliError, parseLimit, parseShard, queueOption, unknownAccount } from './context.js';
import { jobDetail, jobText, summary } from './job-view.js';

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `1h`, `30m`, `7d`, `45s`, `500ms` → milliseconds. */
export function parseDuration(value: string): number {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(value.trim());
  const unit = match?.[2] === undefined ? undefined : DURATION_UNITS[match[2]];
  if (!match || unit === undefined) throw new InvalidArgumentError('must be a duration such as 30s, 15m, 1h or 7d');
  return Number(match[1]) * unit;
}

/** The states `clean` takes (`waiting` is BullMQ's `wait`). */
const CLEANABLE = ['completed', 'failed', 'delayed', 'wait', 'waiting'] as const;
const isCleanable = (state: string): state is (typeof CLEANABLE)[number] =>
  (CLEANABLE as readonly string[]).includes(state);

const notFound = (jobId: string) => new CliError(`no job ${clip(jobId, 80)} in inbound or outbound`);

function pauseRows(pauses: AccountPause[]): string {
  const t = table(['account', 'reason', 'until', 'detail']);
  for (const p of pauses) t.push([p.appId, p.reason, p.until ?? 'resume', clip(p.detail, 60)]);
  return t.toString();
}

/** `stats` and `paused`: the counts per queue and state, and the accounts whose sends are held. */
function registerStats(program: Command, { queues, config }: CliContext): void {
  program
    .command('stats')
    .description('jobs per queue and state over every shard, and the accounts whose sends are paused')
    .option('--shard <n>', 'the counts of one shard only', parseShard)
    .option('--json', 'machine-readable output')
    .action(async (opts) => {
      if (opts.shard !== undefined) queueOption(queues, undefined, opts.shard); // refuses a shard out of range
      const stats = await queues.stats(opts.shard);
      const pauses = await queues.allPauses();
      const accounts: Record<string, { paused: boolean } & Partial<Omit<AccountPause, 'appId'>>> = {};
      // Without a configuration, the accounts are the pause keys found in Redis.
      for (const a of config.ifLoads()?.accounts ?? []) accounts[a.appId] = { paused: false };
      for (const { appId, ...pause } of pauses) accounts[appId] = { paused: true, ...pause };
      const shard = opts.shard === undefined ? {} : { shard: opts.shard };
      print(opts.json, { queues: stats, accounts, ...shard }, () => {
        const t = table([opts.shard === undefined ? 'queue' : `queue (shard ${opts.shard})`, ...JOB_STATES, 'paused']);
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
}

/** `list` and `show`: jobs in a state, and one job in full. */
function registerReads(program: Command, { queues }: CliContext): void {
  program
    .command('list')
    .description('jobs in a state over every shard, newest first')
    .addArgument(new Argument('<state>', 'job state').choices(JOB_STATES))
    .option('--queue <name>', 'inbound or outbound (default: both)')
    .option('--limit <n>', 'at most this many in all', parseLimit, 20)
    .option('--shard <n>', 'the jobs of one shard only', parseShard)
    .option('--json', 'machine-readable output')
    .action(async (state: JobState, opts) => {
      const shards = queueOption(queues, opts.queue, opts.shard);
      const jobs = await newestFirst(shards, state, 0, opts.limit - 1);
      const rows = jobs.map((job) =>
        opts.shard === undefined ? summary(job) : { ...summary(job), shard: opts.shard },
      );
      print(opts.json, rows, () => {
        const t = table(['id', 'queue', 'appId', 'user', 'type', 'attempts', 'created', 'failed reason']);
        for (const r of rows) {
          const failed = clip(r.failedReason ?? '', 80);
          t.push([r.id ?? '', r.queue, r.appId ?? '', r.user ?? '', r.type, r.attempts, r.created ?? '', failed]);
        }
        return rows.length ? t.toString() : `no ${state} jobs`;
      });
    });

  program
    .command('show <jobId>')
    .description("a job's message, its replies and how it ended, attempts and the error of each failed attempt")
    .option('--json', 'machine-readable output')
    .action(async (jobId: string, opts) => {
      const job = await queues.find(jobId);
      if (!job) throw notFound(jobId);
      const detail = await jobDetail(job, queues);
      print(opts.json, detail, () => jobText(detail));
    });
}

/** `retry` and `remove`: one job (or every failed one) run again, or dropped. */
function registerRetries(program: Command, { queues }: CliContext): void {
  program
    .command('retry [jobId]')
    .description('retry one failed job, or every failed job with --failed')
    .option('--failed', 'retry all failed jobs in both queues, on every shard')
    .option('--shard <n>', 'with --failed: one shard only', parseShard)
    .action(async (jobId: string | undefined, opts) => {
      if (opts.failed) {
        // One total, and one per queue: the shards are added up.
        const perQueue = new Map<string, number>();
        for (const q of queueOption(queues, undefined, opts.shard)) {
          const n = await q.getFailedCount();
          if (n > 0) await q.retryJobs({ state: 'failed' });
          perQueue.set(q.name, (perQueue.get(q.name) ?? 0) + n);
        }
        const total = [...perQueue.values()].reduce((a, b) => a + b, 0);
        const where = opts.shard === undefined ? '' : ` on shard ${opts.shard}`;
        const counts = [...perQueue].map(([name, n]) => `${name} ${n}`).join(', ');
        say(`retried ${total} failed job(s)${where} (${counts})`);
        return;
      }
      if (!jobId) throw new CliError('give a job id, or --failed');
      const job = await queues.find(jobId);
      if (!job) throw notFound(jobId);
      if (!(await job.isFailed())) throw new CliError(`job ${jobId} is ${await job.getState()}, not failed`);
      await job.retry();
      say(`retried ${jobId}`);
    });

  program
    .command('remove <jobId>')
    .description('remove a job')
    .action(async (jobId: string) => {
      const job = await queues.find(jobId);
      if (!job) throw notFound(jobId);
      await job.remove();
      say(`removed ${jobId}`);
    });
}

/** `pause` and `resume`: all processing, or one configured account's sends. */
function registerPauses(program: Command, { redis, queues, config }: CliContext): void {
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
      const known = config.get().accounts.map((a) => a.appId);
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
        const data: StoredJobData = job.data;
        if (data.appId !== appId) continue;
        await job.promote();
        promoted++;
      }
      say(
        `${removed ? 'resumed' : 'was not paused:'} sends of ${clip(appId, 40)} (${promoted} delayed job(s) promoted)`,
      );
    });
}

/** `clean`: old jobs in a state dropped. */
function registerClean(program: Command, { queues }: CliContext): void {
  program
    .command('clean <state>')
    .description('remove jobs in a state (completed, failed, delayed, waiting) older than a duration')
    .requiredOption('--older-than <duration>', 'e.g. 1h, 7d', parseDuration)
    .option('--queue <name>', 'inbound or outbound (default: both)')
    .option('--shard <n>', 'one shard only', parseShard)
    .action(async (state: string, opts) => {
      if (!isCleanable(state)) throw new CliError(`cannot clean "${clip(state, 40)}" (${CLEANABLE.join(', ')})`);
      let removed = 0;
      for (const q of queueOption(queues, opts.queue, opts.shard)) {
        removed += (await q.clean(opts.olderThan, 100_000, state === 'waiting' ? 'wait' : state)).length;
      }
      say(`removed ${removed} ${state} job(s) older than ${opts.olderThan / 1000} s`);
    });
}

/**
 * The queue commands (`stats`, `paused`, `list`, `show`, `retry`, `remove`, `pause`, `resume`, `clean`), in the
 * order `--help` lists them. They need Redis alone; `pause --account` also loads the configuration.
 */
export function registerQueueCommands(program: Command, ctx: CliContext): void {
  registerStats(program, ctx);
  registerReads(program, ctx);
  registerRetries(program, ctx);
  registerPauses(program, ctx);
  registerClean(program, ctx);
}
