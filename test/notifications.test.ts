// Subscribe and template messages (issue 24): the grants a user's pop-up choices give, the notifications endpoint
// and the send API's fallback. The ingress and the admin listener run in this process; the worker is its own
// process; Redis is real; the simulator plays WeChat, enforcing the grants of the pop-up events pushed to it.
import { writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildAdminApp, Queues } from '@wx-kf/admin';
import { buildApp } from '@wx-kf/ingress';
import { loadConfig } from '@wx-kf/shared/config';
import { createLogger } from '@wx-kf/shared/log';
import { INBOUND_QUEUE, inboundJobId, openQueue } from '@wx-kf/shared/queue';
import { createRedis } from '@wx-kf/shared/redis';
import type { FieldMap, InboundMessage } from '@wx-kf/shared/wechat';
import { freePort, isolatedRedisUrl, ServiceProcess } from '@wx-kf/testkit';
import { buildPush, popupEvent, Simulator } from '@wx-kf/wechat-sim';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const MP = { appId: 'wxnotifymp000001', appSecret: 'notify-mp-secret', token: 'notifyMpTok', type: 'miniprogram' };
const OA = { appId: 'wxnotifyoa000001', appSecret: 'notify-oa-secret', token: 'notifyOaTok', type: 'officialaccount' };
const KEY = 'a-notifications-api-key-0123456789';
const SHIPPED = 'SIM_TPL_ORDER_SHIPPED';

const sim = new Simulator({
  accounts: [
    { appId: MP.appId, appSecret: MP.appSecret, type: 'miniprogram' },
    { appId: OA.appId, appSecret: OA.appSecret, type: 'officialaccount' },
  ],
  sendWindows: true,
});
let redis: Redis;
let queues: Queues;
let ingress: ReturnType<typeof buildApp>;
let admin: Awaited<ReturnType<typeof buildAdminApp>>;
let worker: ServiceProcess;
let workerMetrics: string;
let redisUrl: string;
let n = 0;
const user = () => `o_notify_${++n}_${Date.now().toString(36)}`;

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wx-kf-notify-'));
  const accounts = join(dir, 'accounts.json');
  writeFileSync(accounts, JSON.stringify({ accounts: [MP, OA] }));
  await sim.listen();
  const metricsPort = await freePort();
  redisUrl = await isolatedRedisUrl();
  const env = {
    REDIS_URL: redisUrl,
    WECHAT_API_BASE: sim.url,
    WECHAT_ACCOUNTS_FILE: accounts,
    ADMIN_PASSWORD: 'notify-admin',
    ADMIN_API_KEY: KEY,
  };
  worker = ServiceProcess.start('worker', { ...env, WORKER_METRICS_PORT: String(metricsPort) });
  workerMetrics = `http://127.0.0.1:${metricsPort}/metrics`;
  const config = loadConfig(env);
  const logger = createLogger('notifications-test', { level: 'silent' });
  redis = createRedis(redisUrl, 'client');
  queues = new Queues(redis);
  ingress = buildApp({ config, queue: openQueue(INBOUND_QUEUE, redis), redis, logger });
  admin = await buildAdminApp(config, logger, { queues });
  await worker.waitFor('worker started');
});
afterAll(async () => {
  await worker.stop();
  await ingress.close();
  await admin.close();
  await queues.close();
  redis.disconnect();
  await sim.close();
});

/** Pushes a message through the ingress as WeChat would; `tellWeChat` records the user's choices in the simulator. */
async function push(message: FieldMap, tellWeChat = true): Promise<string> {
  if (tellWeChat) sim.subscriptions.observe(MP.appId, message);
  const p = buildPush({ account: MP, message, mode: 'plain', format: 'xml' });
  const res = await ingress.inject({
    method: 'POST',
    url: `/wechat/${MP.appId}?${new URLSearchParams(p.query)}`,
    payload: p.body,
    headers: { 'content-type': p.contentType },
  });
  expect(res.body).toBe('success');
  return inboundJobId(MP.appId, message as InboundMessage);
}
let second = Math.floor(Date.now() / 1000);
const choose = (openid: string, status: string, templateId = SHIPPED) =>
  popupEvent([{ templateId, status }], { fromUser: openid, createTime: ++second });

const api = (method: 'GET' | 'POST', url: string, payload?: object, headers: Record<string, string> = {}) =>
  admin.inject({ method, url, payload, headers: { authorization: `Bearer ${KEY}`, ...headers } });
const shipped = (touser: string, thing = '一件衬衫', appId = MP.appId) => ({
  appId,
  touser,
  template_id: SHIPPED,
  data: { character_string1: { value: 'A-1001' }, thing2: { value: thing }, date3: { value: '2026年1月1日' } },
});
const grants = async (openid: string) => (await api('GET', `/api/v1/users/${MP.appId}/${openid}`)).json().grants;

/** Waits for an outbound job to end; resolves its state, failed reason and attempts. */
async function settled(jobId: string, ms = 15_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const job = await queues.find(jobId, queues.outbounds);
    const state = job ? await job.getState() : 'missing';
    if (state === 'completed' || state === 'failed') {
      const done = await queues.find(jobId, queues.outbounds);
      return { state, failedReason: done?.failedReason, attempts: done?.attemptsMade };
    }
    if (Date.now() > deadline) throw new Error(`job ${jobId} is still ${state}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
const calls = (touser: string) => sim.subscriptions.calls.filter((c) => c.touser === touser).map((c) => c.errcode);

describe('grants from pop-up choices', () => {
  it('pop-up accept ×2, then three notifications: two sent, the third 409 no_grant without calling WeChat', async () => {
    const u = user();
    await push(choose(u, 'accept'));
    await push(choose(u, 'accept'));
    expect(await grants(u)).toEqual({ [SHIPPED]: 2 });
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await api('POST', '/api/v1/notifications', shipped(u)));
    expect(answers.map((a) => a.statusCode)).toEqual([202, 202, 409]);
    expect(answers[2]?.json()).toEqual({ error: 'no_grant', message: expect.stringContaining(SHIPPED) });
    const jobs = answers.slice(0, 2).map((a) => a.json().jobId);
    for (const jobId of jobs) expect(await settled(jobId)).toMatchObject({ state: 'completed' });
    expect(calls(u)).toEqual([0, 0]); // the third never reached WeChat
    expect(await grants(u)).toEqual({});
    // WeChat's later report of the send, and the sends themselves, are in the user's timeline.
    await push({
      ToUserName: 'gh_x',
      FromUserName: u,
      CreateTime: String(++second),
      MsgType: 'event',
      Event: 'subscribe_msg_sent_event',
      SubscribeMsgSentEvent: { List: [{ TemplateId: SHIPPED, MsgID: '1', ErrorCode: '0', ErrorStatus: 'success' }] },
    });
    const { timeline } = (await api('GET', `/api/v1/users/${MP.appId}/${u}`)).json();
    expect(timeline).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ direction: 'out', kind: 'subscribe', summary: SHIPPED, result: 'sent' }),
        expect.objectContaining({ kind: 'subscribe_msg_sent_event', summary: `${SHIPPED} 0 success` }),
      ]),
    );
    const metrics = await (await fetch(workerMetrics)).text();
    expect(metrics).toContain(`wxkf_notifications_total{app_id="${MP.appId}",template="${SHIPPED}",outcome="sent"}`);
  });

  it('the same pop-up push delivered twice through the ingress counts one grant (the worker applies it again: no change)', async () => {
    const u = user();
    const accept = choose(u, 'accept');
    const jobId = await push(accept);
    await push(accept, false);
    const inbound = openQueue(INBOUND_QUEUE, redis);
    const deadline = Date.now() + 10_000;
    while ((await (await inbound.getJob(jobId))?.getState()) !== 'completed' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
    }
    await inbound.close();
    expect(await grants(u)).toEqual({ [SHIPPED]: 1 });
    // The queue CLI shows them too.
    const cli = ServiceProcess.start('queues', { REDIS_URL: redisUrl }, ['user', MP.appId, u, '--json']);
    expect(await cli.exited).toBe(0);
    expect(JSON.parse(cli.output.join('\n')).grants).toEqual({ [SHIPPED]: 1 });
  });

  it('a reject clears the grants, and so does a change to reject in the settings', async () => {
    const u = user();
    await push(choose(u, 'accept'));
    await push(choose(u, 'accept', 'SIM_TPL_REMINDER'));
    await push(choose(u, 'reject'));
    expect(await grants(u)).toEqual({ SIM_TPL_REMINDER: 1 });
    await push({
      ToUserName: 'gh_x',
      FromUserName: u,
      CreateTime: String(++second),
      MsgType: 'event',
      Event: 'subscribe_msg_change_event',
      SubscribeMsgChangeEvent: { List: [{ TemplateId: 'SIM_TPL_REMINDER', SubscribeStatusString: 'reject' }] },
    });
    expect(await grants(u)).toEqual({});
    expect((await api('POST', '/api/v1/notifications', shipped(u))).statusCode).toBe(409);
  });
});

describe('the worker', () => {
  it('43101 from WeChat clears the grants and is not retried', async () => {
    const u = user();
    await push(choose(u, 'accept'), false); // WeChat does not know of it: it answers 43101
    await push(choose(u, 'accept'), false);
    const posted = await api('POST', '/api/v1/notifications', shipped(u));
    expect(posted.statusCode).toBe(202);
    const job = await settled(posted.json().jobId);
    expect(job).toMatchObject({ state: 'failed', attempts: 1 });
    expect(job.failedReason).toMatch(/^43101 /);
    expect(calls(u)).toEqual([43101]);
    expect(await grants(u)).toEqual({}); // both: WeChat says the user has none
  });

  it('a transient refusal is retried and uses the grant once; an Idempotency-Key queues one job', async () => {
    const u = user();
    await push(choose(u, 'accept'));
    await push(choose(u, 'accept'));
    sim.fail({ path: '/cgi-bin/message/subscribe/send', appId: MP.appId, script: [{ errcode: -1 }] });
    const headers = { 'idempotency-key': `order-${u}` };
    const first = await api('POST', '/api/v1/notifications', shipped(u), headers);
    const again = await api('POST', '/api/v1/notifications', shipped(u), headers);
    expect(again.json()).toEqual(first.json());
    expect(await settled(first.json().jobId)).toMatchObject({ state: 'completed' });
    sim.faults.clear();
    expect(calls(u)).toEqual([0]); // the -1 came from the fault rule before the route
    expect(await grants(u)).toEqual({ [SHIPPED]: 1 });
  });
});

describe('the notifications endpoint', () => {
  it('a thing of 21 characters is a 422 naming the key and its limit; nothing is queued', async () => {
    const u = user();
    await push(choose(u, 'accept'));
    const refused = await api('POST', '/api/v1/notifications', shipped(u, 'x'.repeat(21)));
    expect(refused.statusCode).toBe(422);
    expect(refused.json()).toEqual({
      error: 'data',
      message: 'data.thing2: a thing value is at most 20 characters (21 given)',
    });
    const unknown = await api('POST', '/api/v1/notifications', { ...shipped(u), template_id: 'NOPE' });
    expect(unknown.json()).toMatchObject({ error: 'data', message: expect.stringContaining('no subscribe template') });
    const wrongKind = await api('POST', '/api/v1/notifications', { ...shipped(u), kind: 'template' });
    expect(wrongKind.json()).toMatchObject({ error: 'kind' });
    expect(await grants(u)).toEqual({ [SHIPPED]: 1 });
    expect(calls(u)).toEqual([]);
  });

  it('the send API with a closed window and a fallback sends the notification and says so', async () => {
    const u = user();
    await push(choose(u, 'accept'));
    const fallback = { template_id: SHIPPED, data: shipped(u).data };
    const message = { appId: MP.appId, touser: u, messages: [{ msgtype: 'text', text: { content: 'shipped' } }] };
    const sent = await api('POST', '/api/v1/messages', { ...message, fallback });
    expect(sent.statusCode).toBe(202);
    expect(sent.json()).toEqual({ jobId: expect.stringMatching(/^notify-/), via: 'notification' });
    expect(await settled(sent.json().jobId)).toMatchObject({ state: 'completed' });
    expect(sim.subscriptions.sent.filter((s) => s.touser === u).map((s) => s.templateId)).toEqual([SHIPPED]);
    // No window and no grant left: 409 no_grant. Without a fallback the refusal stays 409 window.
    expect((await api('POST', '/api/v1/messages', { ...message, fallback })).json()).toMatchObject({
      error: 'no_grant',
    });
    expect((await api('POST', '/api/v1/messages', message)).json()).toMatchObject({ error: 'window' });
  });

  it('an Official Account template message goes through the same endpoint, without a grant', async () => {
    const u = user();
    const posted = await api('POST', '/api/v1/notifications', {
      appId: OA.appId,
      kind: 'template',
      touser: u,
      template_id: 'SIM_OA_TPL_ORDER',
      url: 'https://example.com/orders/1001',
      data: {
        first: { value: 'Your order has shipped' },
        character_string1: { value: 'A-1001' },
        thing2: { value: 'on its way' },
        remark: { value: 'Thank you' },
      },
    });
    expect(posted.statusCode).toBe(202);
    expect(await settled(posted.json().jobId)).toMatchObject({ state: 'completed' });
    expect(sim.subscriptions.sent.filter((s) => s.touser === u).map((s) => [s.kind, s.templateId])).toEqual([
      ['template', 'SIM_OA_TPL_ORDER'],
    ]);
  });
});
