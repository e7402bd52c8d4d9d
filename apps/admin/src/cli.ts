import { type ConfigError, createRedis, loadDotEnv, pauseKey, redisUrlFromEnv } from '@wx-kf/shared';
import type { Job } from 'bullmq';
import Table from 'cli-table3';
import { Argument, Command, InvalidArgumentError } from 'commander';
import { JOB_STATES, Queues } from './queues.js';

/** `1h`, `30m`, `7d`, `45s`, `500ms` → milliseconds. */
export function parseDuration(value: string): number {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(value.trim());
  if (!match) throw new InvalidArgumentError('must be a duration such as 30s, 15m, 1h or 7d');
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'ms'];
  return Number(match[1]) * unit;
}

class CliError extends Error {}

loadDotEnv();
let redisUrl: string;
try {
  redisUrl = redisUrlFromEnv();
} catch (error) {
  for (const problem of (error as ConfigError).problems ?? [String(error)]) console.error(`queues: config: ${problem}`);
  process.exit(1);
}
const redis = createRedis(redisUrl, 'client');
const queues = new Queues(redis);

const print = (json: boolean, data: unknown, human: () => string) =>
  console.log(json ? JSON.stringify(data, null, 2) : human());
const when = (ms: number | undefined) => (ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) : '');

function summary(job: Job) {
  const data = job.data as { appId?: string; touser?: string; message?: { FromUserName?: string; MsgType?: string } };
  return {
    id: job.id,
    queue: job.queueName,
    appId: data.appId,
    user: data.touser ?? data.message?.FromUserName,
    type: data.message?.MsgType ?? `${(data as { replies?: unknown[] }).replies?.length ?? 0} replies`,
    attempts: job.attemptsMade,
    created: when(job.timestamp),
    failedReason: job.failedReason || undefined,
  };
}

function queueArg(name: string | undefined) {
  if (!name) return queues.all;
  const queue = queues.byName(name);
  if (!queue) throw new CliError(`unknown queue "${name}" (inbound or outbound)`);
  return [queue];
}

const program = new Command('pnpm queues')
  .description(
    'Inspect and operate the wx-kf queues (inbound: stored pushes, each sending its replies; outbound: replies being retried, and the send API).',
  )
  .showHelpAfterError();

program
  .command('stats')
  .description('jobs per queue and state')
  .option('--json', 'machine-readable output')
  .action(async (opts) => {
    const stats = await queues.stats();
    print(opts.json, { queues: stats }, () => {
      const table = new Table({ head: ['queue', ...JOB_STATES, 'paused'] });
      for (const [name, s] of Object.entries(stats))
        table.push([name, ...JOB_STATES.map((st) => s[st]), s.paused ? 'yes' : 'no']);
      return table.toString();
    });
  });

program
  .command('list')
  .description('jobs in a state, newest first')
  .addArgument(new Argument('<state>', 'job state').choices(JOB_STATES))
  .option('--queue <name>', 'inbound or outbound (default: both)')
  .option('--limit <n>', 'at most this many per queue', (v) => Number.parseInt(v, 10), 20)
  .option('--json', 'machine-readable output')
  .action(async (state: (typeof JOB_STATES)[number], opts) => {
    if (!JOB_STATES.includes(state)) throw new CliError(`unknown state "${state}" (${JOB_STATES.join(', ')})`);
    const jobs = (await Promise.all(queueArg(opts.queue).map((q) => q.getJobs([state], 0, opts.limit - 1)))).flat();
    const rows = jobs.map(summary);
    print(opts.json, rows, () => {
      const table = new Table({
        head: ['id', 'queue', 'appId', 'user', 'type', 'attempts', 'created', 'failed reason'],
      });
      for (const r of rows)
        table.push([
          r.id ?? '',
          r.queue,
          r.appId ?? '',
          r.user ?? '',
          r.type,
          r.attempts,
          r.created,
          r.failedReason ?? '',
        ]);
      return rows.length ? table.toString() : `no ${state} jobs`;
    });
  });

program
  .command('show <jobId>')
  .description("a job's message, replies, attempts, errcode history and failed reason")
  .option('--json', 'machine-readable output')
  .action(async (jobId: string, opts) => {
    const job = await queues.find(jobId);
    if (!job) throw new CliError(`no job ${jobId} in inbound or outbound`);
    const detail = {
      ...summary(job),
      state: await job.getState(),
      data: job.data,
      returnvalue: job.returnvalue,
      finished: when(job.finishedOn),
      // One line per failed attempt, newest last: for sends, "errcode errmsg".
      history: (job.stacktrace ?? []).map((trace) => trace.split('\n')[0]),
    };
    print(opts.json, detail, () =>
      [
        `job ${detail.id} (${detail.queue}, ${detail.state}) — ${detail.appId} / ${detail.user}`,
        `created ${detail.created}${detail.finished ? `, finished ${detail.finished}` : ''}, attempts ${detail.attempts}`,
        detail.failedReason ? `failed: ${detail.failedReason}` : '',
        detail.history.length ? `attempt errors:\n${detail.history.map((h) => `  - ${h}`).join('\n')}` : '',
        `data: ${JSON.stringify(detail.data, null, 2)}`,
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
      for (const q of queues.all) await q.retryJobs({ state: 'failed' });
      console.log('retried every failed job');
      return;
    }
    if (!jobId) throw new CliError('give a job id, or --failed');
    const job = await queues.find(jobId);
    if (!job) throw new CliError(`no job ${jobId} in inbound or outbound`);
    if (!(await job.isFailed())) throw new CliError(`job ${jobId} is ${await job.getState()}, not failed`);
    await job.retry();
    console.log(`retried ${jobId}`);
  });

program
  .command('remove <jobId>')
  .description('remove a job')
  .action(async (jobId: string) => {
    const job = await queues.find(jobId);
    if (!job) throw new CliError(`no job ${jobId} in inbound or outbound`);
    await job.remove();
    console.log(`removed ${jobId}`);
  });

for (const action of ['pause', 'resume'] as const) {
  program
    .command(action)
    .description(
      action === 'pause'
        ? 'stop processing (all, or one account’s sends)'
        : 'resume processing (all, or one account’s sends)',
    )
    .option('--account <appId>', 'only this account’s sends')
    .action(async (opts) => {
      if (!opts.account) {
        for (const q of queues.all) await (action === 'pause' ? q.pause() : q.resume());
        console.log(`${action === 'pause' ? 'paused' : 'resumed'} inbound and outbound`);
        return;
      }
      if (action === 'pause') {
        await redis.set(pauseKey(opts.account), 'paused by an operator');
        console.log(`paused sends of ${opts.account} (within a second its replies wait as delayed outbound jobs)`);
        return;
      }
      await redis.del(pauseKey(opts.account));
      let promoted = 0;
      for (const job of await queues.outbound.getJobs(['delayed'])) {
        if ((job.data as { appId?: string }).appId === opts.account) {
          await job.promote();
          promoted++;
        }
      }
      console.log(`resumed sends of ${opts.account} (${promoted} delayed job(s) promoted)`);
    });
}

program
  .command('clean <state>')
  .description('remove jobs in a state (completed, failed, delayed, waiting) older than a duration')
  .requiredOption('--older-than <duration>', 'e.g. 1h, 7d', parseDuration)
  .option('--queue <name>', 'inbound or outbound (default: both)')
  .action(async (state: string, opts) => {
    const allowed = ['completed', 'failed', 'delayed', 'wait', 'waiting'];
    if (!allowed.includes(state)) throw new CliError(`cannot clean "${state}" (${allowed.join(', ')})`);
    let removed = 0;
    for (const q of queueArg(opts.queue)) {
      removed += (await q.clean(opts.olderThan, 100_000, (state === 'waiting' ? 'wait' : state) as 'completed')).length;
    }
    console.log(`removed ${removed} ${state} job(s) older than ${opts.olderThan / 1000} s`);
  });

program.exitOverride();
try {
  await program.parseAsync();
} catch (error) {
  const code = (error as { code?: string }).code ?? '';
  if (code === 'commander.helpDisplayed' || code === 'commander.version') process.exitCode = 0;
  else if (code.startsWith('commander.'))
    process.exitCode = 1; // commander already printed the reason
  else {
    console.error(`queues: ${error instanceof CliError ? error.message : (error as Error).message}`);
    process.exitCode = 1;
  }
} finally {
  await queues.close();
  redis.disconnect();
}
