import type { NotificationJobData } from '@wx-kf/shared/notify';
import {
  INBOUND_QUEUE,
  type InboundJobData,
  inboundJob,
  OUTBOUND_JOB_OPTIONS,
  OUTBOUND_QUEUE,
  type OutboundJobData,
  openQueue,
  QUEUE_PREFIX,
} from '@wx-kf/shared/queue';
import { createRedis, Keyspace } from '@wx-kf/shared/redis';
import type { InboundMessage } from '@wx-kf/shared/wechat';
import { isolatedRedisUrl, ServiceProcess } from '@wx-kf/testkit';
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const keyspace = Keyspace.SINGLE;

const APP = 'wxclitest00000001';
const ACCOUNT = { WECHAT_APP_ID: APP, WECHAT_APP_SECRET: 'secret', WECHAT_TOKEN: 'tok123' };
let redisUrl: string;
let redis: Redis;
let outbound: Queue<OutboundJobData>;
let inbound: Queue<InboundJobData>;
let inboundId: string;

/** Runs `pnpm queues …` as its own process, with the account configured unless `env` says otherwise. */
async function cli(...args: string[]): Promise<{ code: number | null; out: string }> {
  return cliWith(ACCOUNT, ...args);
}
async function cliWith(env: NodeJS.ProcessEnv, ...args: string[]): Promise<{ code: number | null; out: string }> {
  const p = ServiceProcess.start('queues', { REDIS_URL: redisUrl, ...env }, args);
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
  outbound = openQueue(OUTBOUND_QUEUE, redis);
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

  // A push whose first reply was accepted and whose second was refused for good: a failed inbound job.
  inbound = openQueue(INBOUND_QUEUE, redis);
  const message = {
    ToUserName: 'gh_x',
    FromUserName: 'o_asker',
    CreateTime: '1700000000',
    MsgType: 'text',
    Content: '价格？',
    MsgId: '24000000000000000001',
  };
  const push = inboundJob(APP, message as InboundMessage, { mode: 'safe', format: 'xml' });
  const replies = ['第一条', '第二条'].map((content) => ({ msgtype: 'text' as const, text: { content } }));
  await inbound.add(push.name, { ...push.data, plan: { replies, source: 'rules', sent: 1 } }, push.opts);
  inboundId = push.data.msgKey;
  const inboundWorker = new Worker(
    INBOUND_QUEUE,
    async () => {
      throw new UnrecoverableError('45015 response out of time limit or subscription is canceled');
    },
    { connection: createRedis(redisUrl, 'worker'), prefix: QUEUE_PREFIX },
  );
  while ((await inbound.getFailedCount()) !== 1) await new Promise((r) => setTimeout(r, 20));
  await inboundWorker.close();
});
afterAll(async () => {
  await inbound.close();
  await outbound.close();
  redis.disconnect();
});

describe('pnpm queues', () => {
  it('stats --json prints the contract shape', async () => {
    const { code, out } = await cli('stats', '--json');
    expect(code).toBe(0);
    const stats = JSON.parse(out);
    expect(stats.queues.outbound).toMatchObject({ waiting: 1, active: 0, delayed: 0, completed: 1, failed: 1 });
    expect(stats.queues.inbound).toMatchObject({ waiting: 0, active: 0, delayed: 0, completed: 0, failed: 1 });
    expect(stats.accounts).toEqual({ [APP]: { paused: false } });
  });

  it('lists failed jobs with their reason, as a table and as JSON', async () => {
    const [table, listed] = await Promise.all([
      cli('list', 'failed'),
      cli('list', 'failed', '--queue', 'outbound', '--json'),
    ]);
    expect(table.out).toContain('job-failed');
    expect(table.out).toContain('45015 response out of time limit');
    const json = JSON.parse(listed.out);
    expect(json).toEqual([
      expect.objectContaining({ id: 'job-failed', queue: 'outbound', user: 'o_failed', attempts: 1 }),
    ]);
    // Times in ISO 8601 with the zone.
    expect(json[0].created).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(new Date(json[0].created).getTime()).toBeGreaterThan(Date.now() - 600_000);
    expect(table.out).toMatch(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/);
  });

  it('names a notification job by its kind and template, not as "0 replies"', async () => {
    const data: NotificationJobData = {
      appId: APP,
      touser: 'o_notified',
      msgKey: 'job-notify',
      kind: 'subscribe',
      notification: { touser: 'o_notified', template_id: 'TPL_shipped', data: {} },
      source: 'api',
      receivedAt: Date.now(),
    };
    // Notification jobs share the outbound queue (under their own job name and data).
    const notifications = new Queue<NotificationJobData>(OUTBOUND_QUEUE, {
      connection: redis,
      prefix: outbound.opts.prefix,
    });
    await notifications.add('notify', data, { ...OUTBOUND_JOB_OPTIONS, jobId: 'job-notify' });
    await notifications.close();
    try {
      const [listed] = JSON.parse((await cli('list', 'waiting', '--queue', 'outbound', '--json')).out).filter(
        (j: { id: string }) => j.id === 'job-notify',
      );
      expect(listed).toMatchObject({ type: 'notification subscribe TPL_shipped', user: 'o_notified' });
    } finally {
      await outbound.remove('job-notify');
    }
  });

  it('prints tables without colour codes when stdout is not a terminal', async () => {
    for (const { out } of await Promise.all([cli('stats'), cli('list', 'failed')])) {
      expect(out).toContain('│');
      expect(out).not.toContain('\u001b[');
    }
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

  it("shows a reply delivered on its second try by its result, not by the first try's error (issue 27)", async () => {
    const url = await isolatedRedisUrl();
    const conn = createRedis(url, 'client');
    const queue = openQueue(OUTBOUND_QUEUE, conn);
    await queue.add('send', job('o_second'), {
      ...OUTBOUND_JOB_OPTIONS,
      jobId: 'job-second-try',
      attempts: 3,
      backoff: { type: 'fixed', delay: 10 },
    });
    const worker = new Worker<OutboundJobData>(
      OUTBOUND_QUEUE,
      async (j) => {
        if (j.attemptsMade === 0) throw new Error('HTTP 503');
        return { sent: 1 };
      },
      { connection: createRedis(url, 'worker'), prefix: QUEUE_PREFIX },
    );
    while ((await queue.getCompletedCount()) !== 1) await new Promise((r) => setTimeout(r, 20));
    await worker.close();
    await queue.close();
    conn.disconnect();
    const shown = JSON.parse((await cliWith({ ...ACCOUNT, REDIS_URL: url }, 'show', 'job-second-try', '--json')).out);
    expect(shown).toMatchObject({ state: 'completed', sent: 1, attempts: 2 });
    expect(shown.failedReason).toBeUndefined();
    expect(shown.history).toEqual(['Error: HTTP 503']);
    const human = (await cliWith({ ...ACCOUNT, REDIS_URL: url }, 'show', 'job-second-try')).out;
    expect(human).toContain('replies (1, 1 accepted by WeChat)');
    expect(human).toContain('outcome: completed');
    expect(human).not.toContain('failed:');
    expect(human).toContain('attempt errors:\n  - Error: HTTP 503');
  });

  it('shows a message with its replies, how many were accepted, and its outcome', async () => {
    const shown = JSON.parse((await cli('show', inboundId, '--json')).out);
    expect(shown).toMatchObject({
      queue: 'inbound',
      state: 'failed',
      sent: 1,
      replies: [{ text: { content: '第一条' } }, { text: { content: '第二条' } }],
      failedReason: expect.stringContaining('45015'),
    });
    expect(shown.finished).toMatch(/Z$/);
    const human = (await cli('show', inboundId)).out;
    expect(human).toContain('message: text "价格？"');
    expect(human).toContain('replies (2, 1 accepted by WeChat):\n  1. text: 第一条\n  2. text: 第二条');
    expect(human).toContain('outcome: failed: 45015 response out of time limit');
  });

  it('retries and removes jobs', async () => {
    expect((await cli('retry', 'job-failed')).code).toBe(0);
    expect(await (await outbound.getJob('job-failed'))?.getState()).toBe('waiting');
    expect((await cli('remove', 'job-waiting')).code).toBe(0);
    expect(await outbound.getJob('job-waiting')).toBeUndefined();
  });

  it('pauses and resumes one account’s sends; the pause has no expiry and shows in stats and paused', async () => {
    expect((await cli('pause', '--account', APP)).code).toBe(0);
    expect(await redis.get(keyspace.paused(APP))).toBe('paused by an operator');
    expect(await redis.pttl(keyspace.paused(APP))).toBe(-1);
    const stats = JSON.parse((await cli('stats', '--json')).out);
    expect(stats.accounts[APP]).toEqual({
      paused: true,
      reason: 'operator',
      detail: 'paused by an operator',
      until: null,
    });
    expect((await cli('stats')).out).toMatch(new RegExp(`${APP}\\s*│\\s*yes \\(operator\\)`));
    const paused = JSON.parse((await cli('paused', '--json')).out);
    expect(paused).toEqual([{ appId: APP, reason: 'operator', detail: 'paused by an operator', until: null }]);
    // A 45009 pause, stored by a worker, is listed with its end even without a configuration.
    await redis.set(keyspace.paused('wxquota0000000001'), '45009 reach max api daily quota limit', 'PX', 3_600_000);
    const listed = await cliWith({}, 'paused');
    expect(listed.code).toBe(0);
    expect(listed.out).toMatch(/wxquota0000000001\s*│\s*quota\s*│\s*\d{4}-\d\d-\d\dT[\d:.]+Z/);
    await redis.del(keyspace.paused('wxquota0000000001'));
    const resumed = await cli('resume', '--account', APP);
    expect(resumed.out).toContain(`resumed sends of ${APP}`);
    expect(await redis.exists(keyspace.paused(APP))).toBe(0);
    await cli('pause');
    expect(await outbound.isPaused()).toBe(true);
    await cli('resume');
    expect(await outbound.isPaused()).toBe(false);
  });

  it('refuses to pause an account that is not configured, or without a configuration', async () => {
    const unknown = await cli('pause', '--account', 'wxnotthere');
    expect(unknown.code).toBe(1);
    expect(unknown.out.split('\n')).toEqual([
      `queues: unknown account "wxnotthere" (configured: ${APP}); nothing paused`,
    ]);
    expect(await redis.exists(keyspace.paused('wxnotthere'))).toBe(0);
    const noConfig = await cliWith({}, 'pause', '--account', APP);
    expect(noConfig.code).toBe(1);
    expect(noConfig.out.split('\n')).toHaveLength(1);
    expect(noConfig.out).toContain('queues: cannot check --account: the configuration does not load');
    expect(await redis.exists(keyspace.paused(APP))).toBe(0);
  });

  it('retry --failed prints how many jobs it retried', async () => {
    const { code, out } = await cli('retry', '--failed');
    expect(code).toBe(0);
    expect(out).toBe('retried 1 failed job(s) (inbound 1, outbound 0)');
    expect(await (await inbound.getJob(inboundId))?.getState()).toBe('waiting');
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
      "queues: option '--older-than <duration>' argument 'soon' is invalid",
    ],
    [['list', 'sleeping'], "queues: command-argument value 'sleeping' is invalid"],
    [['list'], "queues: missing required argument 'state'"],
    [['list', 'failed', '--jsn'], "queues: unknown option '--jsn'"],
    [['frobnicate'], "queues: unknown command 'frobnicate'"],
    [[], 'queues: give a command'],
  ])('%j fails with one line and exit code 1', { concurrent: true }, async (args, message) => {
    const { code, out } = await cli(...args);
    expect(code).toBe(1);
    expect(out.split('\n')).toHaveLength(1);
    expect(out).toContain(message);
  });
});

describe('pnpm queues: stored text on the operator’s terminal', () => {
  it('prints control characters of job data as visible escapes; --json escapes them too and keeps the exact text', async () => {
    // Job data is untrusted (a user's message, an API caller's reply): an OSC title change, a CSI, C1 and a bidi override.
    const content = 'a\u001b]0;pwned\u0007b\u009b2J\u202ec\u007f\r';
    const touser = 'o\u001b[2Jx';
    await outbound.add(
      'send',
      { ...job('o_escape'), touser, replies: [{ msgtype: 'text', text: { content } }] },
      {
        ...OUTBOUND_JOB_OPTIONS,
        jobId: 'job-escape',
      },
    );
    try {
      const humans = await Promise.all([cli('show', 'job-escape'), cli('list', 'waiting', '--queue', 'outbound')]);
      for (const { code, out } of humans) {
        expect(code).toBe(0);
        // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
        expect(out).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
        expect(out).toContain('o\\u001b[2Jx');
      }
      expect(humans[0]?.out).toContain('text: a\\u001b]0;pwned\\u0007b\\u009b2J\\u202ec\\u007f\\u000d');
      // --json escapes them too (JSON.stringify leaves C1, DEL and bidi raw), and still parses to the exact text.
      const json = (await cli('show', 'job-escape', '--json')).out;
      // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
      expect(json).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
      const shown = JSON.parse(json);
      expect(shown.data.replies[0].text.content).toBe(content);
      expect(shown.user).toBe(touser);
    } finally {
      await outbound.remove('job-escape');
    }
  });
});
