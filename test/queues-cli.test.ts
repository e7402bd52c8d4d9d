import {
  createRedis,
  OUTBOUND_JOB_OPTIONS,
  OUTBOUND_QUEUE,
  type OutboundJobData,
  pauseKey,
  QUEUE_PREFIX,
} from '@wx-kf/shared';
import { isolatedRedisUrl, ServiceProcess } from '@wx-kf/testkit';
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const APP = 'wxclitest00000001';
let redisUrl: string;
let redis: Redis;
let outbound: Queue<OutboundJobData>;

async function cli(...args: string[]): Promise<{ code: number | null; out: string }> {
  const p = ServiceProcess.start('queues', { REDIS_URL: redisUrl }, args);
  const code = await p.exited;
  return { code, out: p.output.join('\n') };
}
const job = (touser: string): OutboundJobData => ({
  appId: APP,
  touser,
  msgKey: `k-${touser}`,
  replies: [{ msgtype: 'text', text: { content: 'x' } }],
  sent: 0,
  source: 'api',
});

beforeAll(async () => {
  redisUrl = await isolatedRedisUrl();
  redis = createRedis(redisUrl, 'client');
  outbound = new Queue(OUTBOUND_QUEUE, { connection: redis, prefix: QUEUE_PREFIX });
  // One job fails permanently the way a 45015 would, one completes, one waits.
  await outbound.add('send', job('o_failed'), { ...OUTBOUND_JOB_OPTIONS, jobId: 'job-failed' });
  await outbound.add('send', job('o_done'), { ...OUTBOUND_JOB_OPTIONS, jobId: 'job-done' });
  const worker = new Worker<OutboundJobData>(
    OUTBOUND_QUEUE,
    async (j) => {
      if (j.data.touser === 'o_failed')
        throw new UnrecoverableError('45015 response out of time limit or subscription is canceled');
    },
    { connection: createRedis(redisUrl, 'worker'), prefix: QUEUE_PREFIX },
  );
  while (
    (await outbound.getJobCounts('failed', 'completed')).completed !== 1 ||
    (await outbound.getFailedCount()) !== 1
  ) {
    await new Promise((r) => setTimeout(r, 20));
  }
  await worker.close();
  await outbound.add('send', job('o_waiting'), { ...OUTBOUND_JOB_OPTIONS, jobId: 'job-waiting' });
});
afterAll(async () => {
  await outbound.close();
  redis.disconnect();
});

describe('pnpm queues', () => {
  it('stats --json prints the contract shape', async () => {
    const { code, out } = await cli('stats', '--json');
    expect(code).toBe(0);
    const stats = JSON.parse(out);
    expect(stats.queues.outbound).toMatchObject({ waiting: 1, active: 0, delayed: 0, completed: 1, failed: 1 });
    expect(stats.queues.inbound).toMatchObject({ waiting: 0, active: 0, delayed: 0, completed: 0, failed: 0 });
  });

  it('lists failed jobs with their reason, as a table and as JSON', async () => {
    const table = await cli('list', 'failed');
    expect(table.out).toContain('job-failed');
    expect(table.out).toContain('45015 response out of time limit');
    const json = JSON.parse((await cli('list', 'failed', '--json')).out);
    expect(json).toEqual([
      expect.objectContaining({ id: 'job-failed', queue: 'outbound', user: 'o_failed', attempts: 1 }),
    ]);
  });

  it('shows a job with its replies, attempts and errcode history', async () => {
    const shown = JSON.parse((await cli('show', 'job-failed', '--json')).out);
    expect(shown).toMatchObject({
      state: 'failed',
      failedReason: expect.stringContaining('45015'),
      data: { replies: [{ msgtype: 'text' }] },
    });
    expect(shown.history[0]).toContain('45015');
    expect((await cli('show', 'job-failed')).out).toContain('failed: 45015 response out of time limit');
  });

  it('retries and removes jobs', async () => {
    expect((await cli('retry', 'job-failed')).code).toBe(0);
    expect(await (await outbound.getJob('job-failed'))?.getState()).toBe('waiting');
    expect((await cli('remove', 'job-waiting')).code).toBe(0);
    expect(await outbound.getJob('job-waiting')).toBeUndefined();
  });

  it('pauses and resumes one account’s sends', async () => {
    await cli('pause', '--account', APP);
    expect(await redis.get(pauseKey(APP))).toBe('paused by an operator');
    const resumed = await cli('resume', '--account', APP);
    expect(resumed.out).toContain(`resumed sends of ${APP}`);
    expect(await redis.exists(pauseKey(APP))).toBe(0);
    await cli('pause');
    expect(await outbound.isPaused()).toBe(true);
    await cli('resume');
    expect(await outbound.isPaused()).toBe(false);
  });

  it('cleans completed jobs older than a duration', async () => {
    await new Promise((r) => setTimeout(r, 1100));
    const { out } = await cli('clean', 'completed', '--older-than', '1s');
    expect(out).toContain('removed 1 completed job(s)');
    expect(await outbound.getJob('job-done')).toBeUndefined();
  });

  it.each([
    [['show', 'no-such-job'], 'queues: no job no-such-job in inbound or outbound'],
    [['retry'], 'queues: give a job id, or --failed'],
    [
      ['clean', 'completed', '--older-than', 'soon'],
      "error: option '--older-than <duration>' argument 'soon' is invalid",
    ],
    [['list', 'sleeping'], "error: command-argument value 'sleeping' is invalid"],
  ])('%j fails with one line and exit code 1', async (args, message) => {
    const { code, out } = await cli(...args);
    expect(code).toBe(1);
    expect(out.split('\n')[0]).toContain(message);
  });
});
