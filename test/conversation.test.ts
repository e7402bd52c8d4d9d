// Conversations through the product: the send window ledger (invariant 11), typing, and the user view from the
// CLI and the API. Ingress, worker and admin run in this process against real Redis and a simulator enforcing
// WeChat's windows; the CLI runs as its own process. Time is controlled with the pushes' CreateTime.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildAdminApp, Queues } from '@wx-kf/admin';
import { buildApp } from '@wx-kf/ingress';
import { loadConfig } from '@wx-kf/shared/config';
import { Conversations } from '@wx-kf/shared/conversation';
import { createLogger } from '@wx-kf/shared/log';
import { INBOUND_QUEUE, type InboundJobData, inboundJobId, OUTBOUND_JOB_OPTIONS, openQueue } from '@wx-kf/shared/queue';
import { createRedis } from '@wx-kf/shared/redis';
import type { FieldMap, InboundMessage } from '@wx-kf/shared/wechat';
import { isolatedRedisUrl, ServiceProcess } from '@wx-kf/testkit';
import { buildPush, Simulator, sampleMessage } from '@wx-kf/wechat-sim';
import { type RunningWorker, startWorker } from '@wx-kf/worker';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const APP = 'wxconversation001';
const SECRET = 'conversation-secret';
const TOKEN = 'convToken';
const KEY = 'a-conversation-api-key-0123456789';
const TYPING_AFTER_MS = 150;
const dir = mkdtempSync(join(tmpdir(), 'wx-kf-conv-'));
const handler = join(dir, 'handler.mjs');
writeFileSync(
  handler,
  `export default async function (message, ctx) {
  const c = message.Content ?? '';
  if (message.Event === 'user_enter_tempsession') return [1, 2, 3].map((i) => ctx.reply.text('welcome ' + i));
  if (c === 'six') return [1, 2, 3, 4, 5, 6].map((i) => ctx.reply.text('reply ' + i));
  if (c === 'slow') await new Promise((r) => setTimeout(r, ${TYPING_AFTER_MS * 4}));
  if (c.startsWith('keep')) {
    const w = await ctx.window(message.FromUserName);
    return w.left > 1 ? ctx.reply.text('left ' + w.left) : []; // the last send is kept for a human
  }
  return ctx.reply.text('re: ' + c);
}
`,
);

const sim = new Simulator({ accounts: [{ appId: APP, appSecret: SECRET, type: 'miniprogram' }], sendWindows: true });
let redisUrl: string;
let redis: Redis;
let producer: Redis;
let inbound: Queue<InboundJobData>;
let ingress: ReturnType<typeof buildApp>;
let admin: Awaited<ReturnType<typeof buildAdminApp>>;
let queues: Queues;
let worker: RunningWorker;
let n = 0;
const user = () => `o_conv_${++n}_${Date.now().toString(36)}`;

const env = () => ({
  REDIS_URL: redisUrl,
  WECHAT_API_BASE: sim.url,
  WECHAT_APP_ID: APP,
  WECHAT_APP_SECRET: SECRET,
  WECHAT_TOKEN: TOKEN,
  WECHAT_HANDLER: handler,
  TYPING_AFTER_MS: String(TYPING_AFTER_MS),
  ADMIN_PASSWORD: 'conversation-admin',
  ADMIN_API_KEY: KEY,
});

beforeAll(async () => {
  await sim.listen();
  redisUrl = await isolatedRedisUrl();
  const config = loadConfig(env());
  const logger = createLogger('conversation-test', { level: 'silent' });
  redis = createRedis(redisUrl, 'client');
  producer = createRedis(redisUrl, 'producer');
  inbound = openQueue(INBOUND_QUEUE, redis);
  ingress = buildApp({ config, queue: openQueue(INBOUND_QUEUE, producer), redis: producer, logger });
  queues = new Queues(redis);
  admin = await buildAdminApp(config, logger, { queues });
  worker = await startWorker(config, logger, {
    outboundJobOptions: { ...OUTBOUND_JOB_OPTIONS, backoff: { type: 'exponential', delay: 20, jitter: 0.5 } },
  });
});
afterAll(async () => {
  await worker.close();
  await ingress.close();
  await admin.close();
  await queues.close();
  await inbound.close();
  redis.disconnect();
  producer.disconnect();
  await sim.close();
});

/** Pushes a message through the ingress, as WeChat would (WeChat opens its window as the user acts). */
async function push(message: FieldMap): Promise<string> {
  sim.state.observe(APP, message);
  const p = buildPush({ account: { appId: APP, token: TOKEN }, message, mode: 'plain', format: 'json' });
  const res = await ingress.inject({
    method: 'POST',
    url: `/wechat/${APP}?${new URLSearchParams(p.query)}`,
    payload: p.body,
    headers: { 'content-type': p.contentType },
  });
  expect(res.body).toBe('success');
  return inboundJobId(APP, message as InboundMessage);
}
const say = (openid: string, content: string, secondsAgo = 0) =>
  push(sampleMessage('text', { fromUser: openid, content, createTime: Math.floor(Date.now() / 1000) - secondsAgo }));
const enter = (openid: string, secondsAgo: number) =>
  push(
    sampleMessage('user_enter_tempsession', {
      fromUser: openid,
      createTime: Math.floor(Date.now() / 1000) - secondsAgo,
    }),
  );

async function settled(jobId: string, ms = 15_000): Promise<{ state: string; failedReason?: string }> {
  const deadline = Date.now() + ms;
  for (;;) {
    const job = await inbound.getJob(jobId);
    const state = job ? await job.getState() : 'missing';
    // Read again: the job read before its state may predate the failure.
    if (state === 'completed' || state === 'failed')
      return { state, failedReason: (await inbound.getJob(jobId))?.failedReason };
    if (Date.now() > deadline) throw new Error(`job ${jobId} is still ${state}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
const received = (openid: string) =>
  sim.state.messagesFor(APP, openid).map((m) => (m.body.text as { content: string }).content);
/** custom/send calls the worker made for this account, by errcode (every call WeChat answered). */
async function sendCalls(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await worker.metrics.sends.get()).values) {
    if (v.labels.app_id === APP) out[String(v.labels.errcode)] = v.value;
  }
  return out;
}
const userApi = (openid: string, auth = `Bearer ${KEY}`) =>
  admin.inject({ url: `/api/v1/users/${APP}/${openid}`, headers: { authorization: auth } });

describe('the send window ledger (invariant 11)', () => {
  it('a user message then six planned replies: five sent, the sixth refused by the ledger without calling WeChat', async () => {
    const before = await sendCalls();
    const u = user();
    const { state, failedReason } = await settled(await say(u, 'six'));
    expect(received(u)).toEqual(['reply 1', 'reply 2', 'reply 3', 'reply 4', 'reply 5']);
    expect(state).toBe('failed');
    expect(failedReason).toBe('no sends left until the user writes again');
    const after = await sendCalls();
    expect((after['0'] ?? 0) - (before['0'] ?? 0)).toBe(5);
    expect(Object.keys(after).filter((code) => code !== '0')).toEqual([]); // no 45047: the sixth never left
    const refusals = (await worker.metrics.windowRefusals.get()).values;
    expect(refusals.find((v) => v.labels.reason === 'exhausted')?.value).toBeGreaterThanOrEqual(1);
  });

  it('entering the chat 30 s ago allows two sends within its minute; a window opened 61 s ago is refused', async () => {
    const u = user();
    const fresh = await settled(await enter(u, 30));
    expect(received(u)).toEqual(['welcome 1', 'welcome 2']);
    expect(fresh.failedReason).toBe('no sends left until the user writes again');
    const v = user();
    const stale = await settled(await enter(v, 61));
    expect(received(v)).toEqual([]);
    expect(stale.failedReason).toMatch(/^window closed/);
  });

  it('WeChat answering 45047 or 45015 closes the window, at once and without a retry', async () => {
    for (const [errcode, window] of [
      [45047, { open: true, left: 0 }],
      [45015, { open: false, left: 0 }],
    ] as const) {
      const u = user();
      sim.fail({ path: '/cgi-bin/message/custom/send', appId: APP, script: [{ errcode }] });
      const jobId = await say(u, 'hello');
      const job = await settled(jobId);
      sim.faults.clear();
      expect(job.failedReason).toMatch(new RegExp(`^${errcode} `));
      expect((await inbound.getJob(jobId))?.attemptsMade).toBe(1);
      expect((await userApi(u)).json().window).toMatchObject(window);
      // The send API refuses the user now, unless told to ignore the window.
      const post = (extra: object = {}) =>
        admin.inject({
          method: 'POST',
          url: '/api/v1/messages',
          headers: { authorization: `Bearer ${KEY}` },
          payload: { appId: APP, touser: u, messages: [{ msgtype: 'text', text: { content: 'x' } }], ...extra },
        });
      const refused = await post();
      expect(refused.statusCode).toBe(409);
      expect(refused.json()).toEqual({
        error: 'window',
        message:
          errcode === 45047 ? 'no sends left until the user writes again' : expect.stringMatching(/^window closed at /),
      });
      const forced = await post({ ignoreWindow: true });
      expect(forced.statusCode).toBe(202);
      // WeChat (the simulator) takes it or not; either way it is settled before the next round's fault.
      const deadline = Date.now() + 10_000;
      while (!(await queues.find(forced.json().jobId, queues.outbounds))?.finishedOn && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  });
});

describe("a handler's ctx.window", () => {
  it('shows the ledger, so a handler can keep the last send for a human', async () => {
    const u = user();
    const at = Math.floor(Date.now() / 1000);
    const first = sampleMessage('text', { fromUser: u, content: 'keep 1', createTime: at });
    expect((await settled(await push(first))).state).toBe('completed');
    expect(received(u)).toEqual(['left 5']);
    // Three sends elsewhere (the send API, an agent's tool): one left. A message of the same second grants nothing.
    for (let i = 0; i < 3; i++) expect((await new Conversations(redis).take(APP, u)).ok).toBe(true);
    const second = sampleMessage('text', { fromUser: u, content: 'keep 2', createTime: at });
    expect((await settled(await push(second))).state).toBe('completed');
    expect(received(u)).toEqual(['left 5']);
    expect((await userApi(u)).json().window).toMatchObject({ open: true, left: 1 });
  });
});

describe('typing', () => {
  it('is sent once for a slow handler, and not for a fast one', async () => {
    const [slow, fast] = [user(), user()];
    await Promise.all([settled(await say(slow, 'slow')), settled(await say(fast, 'quick'))]);
    expect(received(slow)).toEqual(['re: slow']);
    expect(received(fast)).toEqual(['re: quick']);
    expect(sim.state.typing.filter((t) => t.touser === slow).map((t) => t.command)).toEqual(['Typing']);
    expect(sim.state.typing.filter((t) => t.touser === fast)).toEqual([]);
  });
});

describe('the user view', () => {
  it('shows the window and the timeline, the same from the CLI and the API', async () => {
    const u = user();
    await settled(await say(u, 'hello there, this is a rather long message that gets clipped'));
    const api = await userApi(u);
    expect(api.statusCode).toBe(200);
    const view = api.json();
    expect(view.window).toEqual({ open: true, until: expect.any(String), left: 4, trigger: 'message' });
    expect(Date.parse(view.window.until) - Date.now()).toBeGreaterThan(47 * 3600_000);
    expect(view.timeline).toEqual([
      {
        at: expect.any(String),
        direction: 'in',
        kind: 'text',
        summary: 'hello there, this is a rather long mess…',
        jobId: expect.stringMatching(new RegExp(`^${APP}-m`)),
        result: 'received',
      },
      {
        at: expect.any(String),
        direction: 'out',
        kind: 'text',
        summary: 're: hello there, this is a rather long …',
        jobId: view.timeline[0].jobId,
        result: 'sent',
      },
    ]);
    const cli = ServiceProcess.start('queues', { REDIS_URL: redisUrl }, ['user', APP, u, '--json']);
    expect(await cli.exited).toBe(0);
    expect(JSON.parse(cli.output.join('\n'))).toEqual(view);
    const human = ServiceProcess.start('queues', { REDIS_URL: redisUrl }, ['user', APP, u]);
    expect(await human.exited).toBe(0);
    expect(human.output.join('\n')).toMatch(/window: open until .*, 4 send\(s\) left \(opened by message\)/);
    // With the configuration at hand, a mistyped appId is an error, not an empty user.
    const typo = ServiceProcess.start('queues', env(), ['user', 'wxnotconfigured01', u]);
    expect(await typo.exited).toBe(1);
    expect(typo.output.join('\n')).toContain(`unknown account "wxnotconfigured01" (configured: ${APP})`);

    expect((await userApi(u, 'Bearer wrong-key-wrong-key-wrong')).statusCode).toBe(401);
    expect(
      (await admin.inject({ url: `/api/v1/users/wxnobody/${u}`, headers: { authorization: `Bearer ${KEY}` } }))
        .statusCode,
    ).toBe(404);
  });

  it('counts users with an open window in /metrics', async () => {
    const res = await admin.inject({
      url: '/metrics',
      headers: { authorization: `Basic ${Buffer.from('admin:conversation-admin').toString('base64')}` },
    });
    const open = Number(new RegExp(`wxkf_open_windows\\{app_id="${APP}"\\} (\\d+)`).exec(res.body)?.[1]);
    expect(open).toBeGreaterThanOrEqual(5);
  });
});
