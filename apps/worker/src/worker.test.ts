import { execFileSync } from 'node:child_process';
import { mkdtempSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenManager, WeChatClient, WeChatHttp } from '@wx-kf/shared/api';
import { type Config, loadConfig } from '@wx-kf/shared/config';
import { Conversations, WINDOW_GRANTS } from '@wx-kf/shared/conversation';
import { createLogger } from '@wx-kf/shared/log';
import {
  INBOUND_QUEUE,
  type InboundJobData,
  inboundJob,
  inboundJobId,
  OUTBOUND_JOB_OPTIONS,
  OUTBOUND_QUEUE,
  type OutboundJobData,
  openQueue,
} from '@wx-kf/shared/queue';
import { createRedis, Keyspace, TOKEN_EVENTS } from '@wx-kf/shared/redis';
import type { FieldMap, InboundMessage } from '@wx-kf/shared/wechat';
import { isolatedRedisUrl, LogCapture } from '@wx-kf/testkit';
import { type Fault, Simulator, sampleMessage } from '@wx-kf/wechat-sim';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PAUSE_CHECK_MS } from './processors/send.js';
import { type RunningWorker, startWorker } from './worker.js';

const keyspace = Keyspace.SINGLE;

const MP = 'wxworkermp0000001';
const OA = 'wxworkeroa0000002';
const dir = mkdtempSync(join(tmpdir(), 'wx-kf-worker-'));
writeFileSync(join(dir, 'qr.png'), 'PNG-BYTES');
writeFileSync(
  join(dir, 'rules.yaml'),
  `rules:
  - when: { msgType: text, equals: hello }
    reply: [{ msgtype: text, text: { content: hi } }]
  - when: { msgType: text, equals: three }
    reply:
      - { msgtype: text, text: { content: "1" } }
      - { msgtype: text, text: { content: "2" } }
      - { msgtype: text, text: { content: "3" } }
  - when: { msgType: text, regex: "^order\\\\s+(\\\\d+)$" }
    reply: [{ msgtype: text, text: { content: "order {{match.1}} for {{FromUserName}}" } }]
  - when: { msgType: text, equals: qr }
    reply: [{ msgtype: image, image: { file: ./qr.png } }]
  - when: { event: user_enter_tempsession }
    reply: [{ msgtype: text, text: { content: 欢迎 } }]
  - when: { msgType: text, contains: 人工 }
    transfer: true
fallback: [{ msgtype: text, text: { content: "收到：{{Content}}" } }]
`,
);

const sim = new Simulator({
  accounts: [
    { appId: MP, appSecret: 'mp-secret', type: 'miniprogram' },
    { appId: OA, appSecret: 'oa-secret', type: 'officialaccount' },
  ],
});
const logs = new LogCapture();
let config: Config;
let redis: Redis;
let inbound: Queue<InboundJobData>;
let outbound: Queue<OutboundJobData>;
let worker: RunningWorker;
let user = 0;

function configFor(simUrl: string, redisUrl: string, extra: NodeJS.ProcessEnv = {}): Config {
  const accounts = join(dir, `accounts-${Math.random()}.json`);
  writeFileSync(
    accounts,
    JSON.stringify({
      accounts: [
        { appId: MP, appSecret: 'mp-secret', token: 'tokMP', type: 'miniprogram' },
        { appId: OA, appSecret: 'oa-secret', token: 'tokOA', type: 'officialaccount' },
      ],
    }),
  );
  return loadConfig({
    REDIS_URL: redisUrl,
    WECHAT_API_BASE: simUrl,
    WECHAT_ACCOUNTS_FILE: accounts,
    REPLY_RULES_FILE: join(dir, 'rules.yaml'),
    WORKER_CONCURRENCY: '20',
    ...extra,
  });
}

/** Stores a push as the ingress would. */
async function push(fields: FieldMap, appId = MP, transferred = false): Promise<string> {
  const job = inboundJob(appId, fields as InboundMessage, { mode: 'safe', format: 'json', transferred });
  await inbound.add(job.name, job.data, job.opts);
  return job.data.msgKey;
}
const text = (content: string, fromUser = `o_user_${++user}`) => sampleMessage('text', { content, fromUser });
const contents = (touser: string) =>
  sim.state
    .messagesFor(undefined, touser)
    .map((m) => (m.body.text as { content: string } | undefined)?.content ?? m.msgtype);

type Truthy<T> = Exclude<T, false | 0 | '' | null | undefined>;
async function until<T>(check: () => T | Promise<T>, ms = 10_000): Promise<Truthy<T>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value as Truthy<T>;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
/** A cold start as the running worker sees it: no stored token, and the processes told so (as on a 40001). */
async function forgetToken(appId: string): Promise<void> {
  await redis.del(keyspace.token(appId));
  await redis.publish(TOKEN_EVENTS, appId);
}
/** Sends left in the user's window. */
const left = async (appId: string, openid: string) => (await new Conversations(redis).window(appId, openid)).left;
const failedReason = async (jobId: string) => until(async () => (await inbound.getJob(jobId))?.failedReason);
const outboundFailure = async (jobId: string) => until(async () => (await outbound.getJob(jobId))?.failedReason);

beforeAll(async () => {
  const simUrl = await sim.listen();
  const redisUrl = await isolatedRedisUrl();
  config = configFor(simUrl, redisUrl);
  redis = createRedis(redisUrl, 'client');
  inbound = openQueue(INBOUND_QUEUE, redis);
  outbound = openQueue(OUTBOUND_QUEUE, redis);
  worker = await startWorker(config, createLogger('worker-test', { destination: logs }), {
    outboundJobOptions: { ...OUTBOUND_JOB_OPTIONS, backoff: { type: 'exponential', delay: 20, jitter: 0.5 } },
    tokenOptions: { cooldownMs: 60_000 },
  });
});
afterEach(async () => {
  sim.faults.clear();
  await redis.del(keyspace.paused(MP), keyspace.paused(OA));
});
afterAll(async () => {
  await worker.close();
  await inbound.close();
  await outbound.close();
  redis.disconnect();
  await sim.close();
});

describe('replies from rules', () => {
  it('answers equals, regex templates, events and the fallback', async () => {
    const [a, b, c] = [text('hello'), text('order 42'), text('anything')];
    const enter = sampleMessage('user_enter_tempsession', { fromUser: 'o_enter' });
    for (const m of [a, b, c, enter]) await push(m);
    await until(() => sim.state.messagesFor(MP).length >= 4);
    expect(contents(String(a.FromUserName))).toEqual(['hi']);
    expect(contents(String(b.FromUserName))).toEqual([`order 42 for ${b.FromUserName}`]);
    expect(contents(String(c.FromUserName))).toEqual(['收到：anything']);
    expect(contents('o_enter')).toEqual(['欢迎']);
  });

  it('sends nothing for a transferred message', async () => {
    const m = text('人工');
    const jobId = await push(m, MP, true);
    await until(async () => (await inbound.getJob(jobId))?.returnvalue);
    expect((await inbound.getJob(jobId))?.returnvalue).toEqual({ action: 'transferred' });
    expect(contents(String(m.FromUserName))).toEqual([]);
  });

  it('uploads a file once and reuses its media_id', async () => {
    const users = [text('qr'), text('qr'), text('qr')];
    for (const m of users) await push(m);
    const sent = await until(() => {
      const all = users.flatMap((m) => sim.state.messagesFor(MP, String(m.FromUserName)));
      return all.length === 3 && all;
    });
    expect(sim.state.media.size).toBe(1);
    const ids = new Set(sent.map((m) => (m.body.image as { media_id: string }).media_id));
    expect(ids.size).toBe(1);
    expect(sim.state.media.get([...ids][0] as string)?.data.toString()).toBe('PNG-BYTES');
  });

  it('re-uploads when WeChat forgot the media_id (40007)', async () => {
    const first = text('qr');
    await push(first);
    await until(() => sim.state.messagesFor(MP, String(first.FromUserName)).length === 1);
    const before = sim.state.media.size;
    sim.fail({
      path: '/cgi-bin/message/custom/send',
      appId: MP,
      script: [{ errcode: 40007, errmsg: 'invalid media_id' }],
    });
    const second = text('qr');
    await push(second);
    await until(() => sim.state.messagesFor(MP, String(second.FromUserName)).length === 1);
    expect(sim.state.media.size).toBe(before + 1);
  });
});

describe('order and progress', () => {
  it('sends three replies in order', async () => {
    const m = text('three');
    await push(m);
    await until(() => contents(String(m.FromUserName)).length === 3);
    expect(contents(String(m.FromUserName))).toEqual(['1', '2', '3']);
  });

  it("sends a message's replies in its own job: no outbound job while WeChat accepts them", async () => {
    const m = text('three');
    const jobId = await push(m);
    await until(() => contents(String(m.FromUserName)).length === 3);
    await until(async () => (await inbound.getJob(jobId))?.returnvalue);
    expect((await inbound.getJob(jobId))?.returnvalue).toEqual({ action: 'replied', replies: 3 });
    expect(await outbound.getJob(`${jobId}-r`)).toBeUndefined();
  });

  it('a retried push whose plan was part sent resumes after the replies WeChat accepted', async () => {
    const m = text('anything');
    const job = inboundJob(MP, m as InboundMessage, { mode: 'safe', format: 'json' });
    const replies = ['a', 'b', 'c'].map((content) => ({ msgtype: 'text' as const, text: { content } }));
    await inbound.add(job.name, { ...job.data, plan: { replies, source: 'handler', sent: 1 } }, job.opts);
    const jobId = job.data.msgKey;
    await until(() => contents(String(m.FromUserName)).length === 2);
    await until(async () => (await inbound.getJob(jobId))?.returnvalue);
    expect(contents(String(m.FromUserName))).toEqual(['b', 'c']);
  });

  it('does not resend a reply that succeeded when the next one fails', async () => {
    sim.fail({ path: '/cgi-bin/message/custom/send', appId: MP, script: ['ok', { errcode: -1 }, { http: 502 }] });
    const m = text('three');
    await push(m);
    await until(() => contents(String(m.FromUserName)).length === 3);
    expect(contents(String(m.FromUserName))).toEqual(['1', '2', '3']);
  });
});

describe('the send window with rules', () => {
  it('a reply takes one send (with its turn); one whose plan fails is given back', async () => {
    const plain = text('hello');
    await push(plain, OA);
    await until(() => contents(String(plain.FromUserName)).length === 1);
    expect(await left(OA, String(plain.FromUserName))).toBe(4);

    // A permanent media upload failure: nothing sent, the send taken for it is back.
    for (const key of await redis.keys(keyspace.media(OA, '*', '*'))) await redis.del(key);
    sim.fail({ path: '/cgi-bin/media/upload', appId: OA, script: [{ errcode: 40004, errmsg: 'invalid media type' }] });
    const qr = text('qr');
    const failed = await push(qr, OA);
    expect(await failedReason(failed)).toBe('media upload: 40004 invalid media type');
    expect(await left(OA, String(qr.FromUserName))).toBe(5);
  });

  it('a send the turn could not take is asked for again at the send: the user may have written meanwhile', async () => {
    const first = text('hello');
    const u = String(first.FromUserName);
    await push(first, OA);
    await until(() => contents(u).length === 1);
    const conversations = new Conversations(redis);
    for (let i = 0; i < 4; i++) await conversations.take(OA, u);
    // A message of the same second grants nothing: its turn finds no send left. Its upload is slow, and the user
    // acts while it runs.
    for (const key of await redis.keys(keyspace.media(OA, '*', '*'))) await redis.del(key);
    sim.fail({ path: '/cgi-bin/media/upload', appId: OA, script: [{ delayMs: 1500 }] });
    const jobId = await push({ ...text('qr', u), CreateTime: first.CreateTime } as FieldMap, OA);
    await until(async () => (await inbound.getJob(jobId))?.processedOn);
    await new Promise((r) => setTimeout(r, 300));
    await conversations.grant(OA, u, WINDOW_GRANTS.message);
    await until(() => contents(u).length === 2);
    expect(contents(u)).toEqual(['hi', 'image']);
  });
});

describe('errors', () => {
  it('retries -1, 45011, 5xx, timeouts and dropped connections, then delivers once', async () => {
    const faults: Fault[] = [{ errcode: -1 }, { errcode: 45011 }, { http: 503 }, { drop: true }];
    sim.fail({ path: '/cgi-bin/message/custom/send', appId: MP, script: faults });
    const m = text('hello');
    const jobId = await push(m);
    await until(() => contents(String(m.FromUserName)).length === 1);
    // The push's own job made the first attempt, then handed the reply to the outbound queue for the rest.
    expect((await inbound.getJob(jobId))?.returnvalue).toMatchObject({ action: 'requeued', sent: 0 });
    await until(async () => (await outbound.getJob(`${jobId}-r`))?.isCompleted());
    // Read once completed: a job read before its last attempt ended counts one attempt fewer.
    const job = await outbound.getJob(`${jobId}-r`);
    if (!job) throw new Error('the retry job is gone');
    // The four faults were each met once, by the push's own try or by this retry job (at least three of them).
    expect(job.attemptsMade).toBeGreaterThanOrEqual(3);
    expect(job.stacktrace?.length).toBe(job.attemptsMade - 1);
    expect(contents(String(m.FromUserName))).toEqual(['hi']);
  });

  it.each([
    [45015, 'response out of time limit or subscription is canceled'],
    [45047, 'out of response count limit'],
    [40003, 'invalid openid'],
  ])('fails at once on %i with the code in the reason', async (errcode, errmsg) => {
    sim.fail({ path: '/cgi-bin/message/custom/send', appId: MP, script: [{ errcode, errmsg }] });
    const jobId = await push(text('hello'));
    expect(await failedReason(jobId)).toBe(`${errcode} ${errmsg}`);
    expect((await inbound.getJob(jobId))?.attemptsMade).toBe(1);
    expect(await outbound.getJob(`${jobId}-r`)).toBeUndefined();
  });

  it('pauses only the account whose quota is spent (45009)', async () => {
    sim.fail({
      path: '/cgi-bin/message/custom/send',
      appId: MP,
      script: [{ errcode: 45009, errmsg: 'reach max api daily quota limit' }],
    });
    const blocked = text('hello');
    const jobId = await push(blocked);
    await until(async () => (await outbound.getJob(`${jobId}-r`))?.isDelayed());
    expect(await redis.pttl(keyspace.paused(MP))).toBeGreaterThan(60_000);
    const other = text('hello');
    await push(other, OA);
    await until(() => contents(String(other.FromUserName)).length === 1);
    const more = text('hello');
    const held = await push(more);
    await until(async () => (await outbound.getJob(`${held}-r`))?.isDelayed());
    expect(contents(String(blocked.FromUserName))).toEqual([]);
    expect(contents(String(more.FromUserName))).toEqual([]);
    // The operator (or the pause's end) resumes: the delayed jobs are promoted and sent.
    await redis.del(keyspace.paused(MP));
    await (await outbound.getJob(`${jobId}-r`))?.promote();
    await (await outbound.getJob(`${held}-r`))?.promote();
    await until(
      () => contents(String(blocked.FromUserName)).length === 1 && contents(String(more.FromUserName)).length === 1,
    );
  });

  it("an operator's pause of one account holds its replies (within PAUSE_CHECK_MS) until resumed", async () => {
    await redis.set(keyspace.paused(OA), 'paused by an operator');
    await new Promise((r) => setTimeout(r, PAUSE_CHECK_MS + 50));
    const m = text('hello');
    const jobId = await push(m, OA);
    const held = await until(async () => {
      const j = await outbound.getJob(`${jobId}-r`);
      return (await j?.isDelayed()) && j;
    });
    expect(contents(String(m.FromUserName))).toEqual([]);
    expect(await left(OA, String(m.FromUserName))).toBe(5); // the send the turn took went back
    await redis.del(keyspace.paused(OA));
    await held.promote();
    await until(() => contents(String(m.FromUserName)).length === 1);
    expect(await left(OA, String(m.FromUserName))).toBe(4);
  });

  it('counts transport failures in the metrics', async () => {
    sim.fail({ path: '/cgi-bin/message/custom/send', appId: OA, script: [{ drop: true }] });
    const m = text('hello');
    await push(m, OA);
    await until(() => contents(String(m.FromUserName)).length === 1);
    const metric = await worker.metrics.sends.get();
    expect(
      metric.values.find((v) => v.labels.app_id === OA && v.labels.errcode === 'transport')?.value,
    ).toBeGreaterThanOrEqual(1);
  });
});

describe('the shared access_token', () => {
  it('300 concurrent sends on a cold start make one token request', async () => {
    const account = 'wxworkermp0000001';
    await forgetToken(account);
    sim.state.tokenRequests.clear();
    const users = Array.from({ length: 300 }, () => text('hello'));
    await Promise.all(users.map((m) => push(m)));
    await until(() => users.every((m) => contents(String(m.FromUserName)).length === 1), 30_000);
    expect(sim.state.tokenRequestCount(account)).toBe(1);
  });

  it('an invalidation storm (every send gets 40001 once) costs one refresh', async () => {
    sim.state.tokenRequests.clear();
    sim.state.invalidateTokens(MP);
    const users = Array.from({ length: 100 }, () => text('hello'));
    await Promise.all(users.map((m) => push(m)));
    await until(() => users.every((m) => contents(String(m.FromUserName)).length === 1), 30_000);
    expect(sim.state.tokenRequestCount(MP)).toBe(1);
  });

  it('stops asking for tokens after a configuration error and says why, loudly', async () => {
    await forgetToken(OA);
    sim.state.tokenRequests.clear();
    sim.fail({
      path: '/cgi-bin/stable_token',
      appId: OA,
      script: [{ errcode: 40164, errmsg: 'invalid ip 203.0.113.9, not in whitelist' }],
    });
    const users = Array.from({ length: 20 }, () => text('hello'));
    const ids = await Promise.all(users.map((m) => push(m, OA)));
    await until(async () =>
      (await Promise.all(ids.map(async (id) => (await outbound.getJob(`${id}-r`))?.isDelayed()))).every(Boolean),
    );
    expect(sim.state.tokenRequestCount(OA)).toBe(1);
    const loud = logs.records.find((r) => r.errcode === 40164 && r.level === 50);
    expect(String(loud?.errmsg)).toContain('203.0.113.9');
    // Nothing left without a token: each user's send went back to the window, and is taken once it goes out.
    const lefts = () => Promise.all(users.map((m) => left(OA, String(m.FromUserName))));
    expect(new Set(await lefts())).toEqual(new Set([5]));
    await redis.del(keyspace.tokenCooldown(OA));
    for (const id of ids) await (await outbound.getJob(`${id}-r`))?.promote();
    await until(() => users.every((m) => contents(String(m.FromUserName)).length === 1));
    expect(new Set(await lefts())).toEqual(new Set([4]));
  });

  it('keeps no secret in Redis key names or logs', async () => {
    const keys = await redis.keys('*');
    for (const secret of ['mp-secret', 'oa-secret']) {
      expect(keys.join('\n')).not.toContain(secret);
      expect(logs.text).not.toContain(secret);
    }
    const token = JSON.parse((await redis.get(keyspace.token(MP))) ?? '{}').token;
    expect(token).toMatch(/^SIM_/);
    expect(logs.text).not.toContain(token);
  });
});

describe('a handler module', () => {
  it('replaces the rules and can queue more messages', async () => {
    const handlerFile = join(dir, 'handler.mjs');
    writeFileSync(
      handlerFile,
      `export default async function (message, ctx) {
        if (message.Content === 'bad') return [{ msgtype: 'wxcard', wxcard: { card_id: 'x' } }];
        await ctx.send(message.FromUserName, [ctx.reply.text('later')]);
        return [ctx.reply.text('echo ' + message.Content + ' from ' + ctx.account.appId)];
      }`,
    );
    const handlerRedis = await isolatedRedisUrl();
    const own = await startWorker(
      configFor(sim.url, handlerRedis, { WECHAT_HANDLER: handlerFile }),
      createLogger('h', { level: 'silent' }),
    );
    const conn = createRedis(handlerRedis, 'client');
    const q = openQueue(INBOUND_QUEUE, conn);
    try {
      const m = text('ping') as InboundMessage;
      await q.add(
        'push',
        {
          appId: MP,
          msgKey: 'k1',
          mode: 'plain',
          format: 'xml',
          receivedAt: Date.now(),
          transferred: false,
          message: m,
        },
        { jobId: inboundJobId(MP, m) },
      );
      await until(() => contents(String(m.FromUserName)).length === 2);
      expect(contents(String(m.FromUserName)).sort()).toEqual([`echo ping from ${MP}`, 'later'].sort());
      const bad = text('bad') as InboundMessage;
      const badId = inboundJobId(MP, bad);
      await q.add(
        'push',
        {
          appId: MP,
          msgKey: 'k2',
          mode: 'plain',
          format: 'xml',
          receivedAt: Date.now(),
          transferred: false,
          message: bad,
        },
        { jobId: badId },
      );
      expect(await until(async () => (await q.getJob(badId))?.failedReason)).toContain(
        'msgtype "wxcard" cannot be sent by a miniprogram',
      );
    } finally {
      await own.close();
      await q.close();
      conn.disconnect();
    }
  });
});

describe('job data is untrusted', () => {
  /** Adds an outbound job as anyone with Redis access could, with these fields over a valid base. */
  const forged = async (fields: Record<string, unknown>) => {
    const data = { appId: MP, touser: `o_forged_${++user}`, msgKey: 'k', sent: 0, source: 'api', ...fields };
    const job = await outbound.add('send', data as OutboundJobData, { attempts: 3 });
    return job.id as string;
  };

  it('a job naming a file (/etc/passwd, /dev/zero) fails at once: nothing is read, uploaded or sent', async () => {
    const media = sim.state.media.size;
    const sends = sim.state.messages.length;
    for (const file of ['/etc/passwd', '/dev/zero']) {
      const id = await forged({ replies: [{ msgtype: 'image', image: { file } }] });
      expect(await outboundFailure(id)).toMatch(/^reply 0: image/);
      expect((await outbound.getJob(id))?.attemptsMade).toBe(1);
    }
    // A stored plan of an inbound job is checked the same way.
    const m = text('anything');
    const job = inboundJob(MP, m as InboundMessage, { mode: 'safe', format: 'json' });
    const plan = { replies: [{ msgtype: 'image', image: { file: '/etc/passwd' } }], source: 'rules', sent: 0 };
    await inbound.add(job.name, { ...job.data, plan } as InboundJobData, job.opts);
    expect(await failedReason(job.data.msgKey)).toMatch(/^reply 0: image/);
    expect(sim.state.media.size).toBe(media);
    expect(sim.state.messages.length).toBe(sends);
  });

  it('refuses the rest of what a job must get right, each with a short reason', async () => {
    const hi = [{ msgtype: 'text', text: { content: 'hi' } }];
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ appId: 'wxnotconfigured0', replies: hi }, /^account "wxnotconfigured0" is not configured on this worker$/],
      [{ touser: '../../etc', replies: hi }, /^touser "\.\.\/\.\.\/etc" is not an OpenID$/],
      [{ touser: 'o'.repeat(100_000), replies: hi }, /^touser "o+… is not an OpenID$/],
      [{ touser: { $gt: '' }, replies: hi }, /^touser object is not an OpenID$/],
      [{ sent: 1.5, replies: hi }, /^sent must be an integer from 0 to 1, not number$/],
      [{ sent: 2, replies: hi }, /^sent must be an integer from 0 to 1/],
      [{ replies: [] }, /^replies must be a list of 1 to 20/],
      [{ replies: 'hi' }, /^replies must be a list of 1 to 20/],
      [{ replies: [{ msgtype: 'wxcard', wxcard: { card_id: 'c' } }] }, /^reply 0: msgtype "wxcard" cannot be sent/],
      [{ replies: hi, source: 'evil' }, /^source "evil" is not known$/],
    ];
    const sends = sim.state.messages.length;
    for (const [fields, reason] of cases) expect(await outboundFailure(await forged(fields))).toMatch(reason);
    // A key of 100 000 characters: the failed reason stays short.
    const long = await outboundFailure(
      await forged({ replies: [{ msgtype: 'text', text: { [`k${'x'.repeat(100_000)}`]: 1 } }] }),
    );
    expect(long.length).toBeLessThanOrEqual(200);
    expect(sim.state.messages.length).toBe(sends);
  });

  it('refuses an inbound job whose sender is not an OpenID', async () => {
    for (const from of [['o_a', 'o_b'], 'o_x\nforged', undefined]) {
      const m = { ...text('hello'), FromUserName: from } as unknown as InboundMessage;
      const job = inboundJob(MP, m, { mode: 'safe', format: 'json' });
      await inbound.add(job.name, job.data, job.opts);
      expect(await failedReason(job.data.msgKey)).toMatch(/^message\.FromUserName .* is not an OpenID$/);
    }
  });

  it('uploads only regular files within the limit: /dev/zero, a FIFO and an oversized file are refused at once', async () => {
    const http = new WeChatHttp({ baseUrl: sim.url });
    const tokens = new TokenManager({
      redis,
      http,
      accounts: [],
      source: 'stable',
      logger: createLogger('t', { level: 'silent' }),
    });
    const api = new WeChatClient(http, tokens, redis);
    const fifo = join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    const big = join(dir, 'big.jpg');
    writeFileSync(big, '');
    truncateSync(big, 64 * 1024 + 1);
    const media = sim.state.media.size;
    try {
      await expect(api.uploadTempMedia(MP, 'image', '/dev/zero')).rejects.toThrow('media file is not a regular file');
      await expect(api.uploadTempMedia(MP, 'image', fifo)).rejects.toThrow('media file is not a regular file');
      await expect(api.uploadTempMedia(MP, 'thumb', big)).rejects.toThrow("larger than WeChat's 64 kB limit");
      expect(sim.state.media.size).toBe(media);
    } finally {
      tokens.close();
      await http.close();
    }
  });
});

describe("the worker's metrics listener", () => {
  // metricsUrl is read from the bound socket, so 127.0.0.1 there is where the listener really is (loopback only).
  it('binds loopback by default and says where it really listens', async () => {
    const own = await startWorker(
      configFor(sim.url, await isolatedRedisUrl(), { WORKER_METRICS_PORT: '0' }),
      createLogger('m', { destination: logs }),
    );
    try {
      const url = new URL(own.metricsUrl ?? '');
      expect(url.hostname).toBe('127.0.0.1');
      expect(Number(url.port)).toBeGreaterThan(0);
      expect((await fetch(new URL('/healthz', url))).status).toBe(200);
      const started = logs.records.filter((r) => r.msg === 'worker started' && r.metricsUrl === own.metricsUrl);
      expect(started).toHaveLength(1);
    } finally {
      await own.close();
    }
  });
});
