import { type Config, loadConfig } from '@wx-kf/shared/config';
import { Conversations, WINDOW_GRANTS } from '@wx-kf/shared/conversation';
import { createLogger } from '@wx-kf/shared/log';
import { OUTBOUND_JOB_OPTIONS, OUTBOUND_QUEUE, QUEUE_PREFIX } from '@wx-kf/shared/queue';
import { createRedis, Keyspace } from '@wx-kf/shared/redis';
import { isolatedRedisUrl } from '@wx-kf/testkit';
import { type Queue, UnrecoverableError, Worker } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { Counter, Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAdminApp } from './admin.js';
import { Queues } from './queues.js';
import { SEND_API_BODY_LIMIT } from './routes/schemas.js';

const keyspace = Keyspace.SINGLE;

const KEY = 'an-api-key-of-32-characters-long';
let redis: Redis;
let queues: Queues;
let app: FastifyInstance;
let config: Config;
let redisUrl: string;
let env: Record<string, string>;
const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
const APP = 'wxadminmp00000001';
const ADMIN = basic('admin', 'correct horse');
const send = (
  body: unknown,
  auth = `Bearer ${KEY}`,
  headers: Record<string, string> = {},
  remoteAddress = '127.0.0.1',
) =>
  app.inject({
    method: 'POST',
    url: '/api/v1/messages',
    payload: body as object,
    headers: { authorization: auth, ...headers },
    remoteAddress,
  });
const text = (content: string) => ({ msgtype: 'text', text: { content } });
/** The outbound queue (one shard in these tests). */
const outbound = () => queues.outbounds[0] as Queue;
const outboundCount = async () => (await outbound().getJobCounts('waiting')).waiting ?? 0;

beforeAll(async () => {
  redisUrl = await isolatedRedisUrl();
  env = {
    REDIS_URL: redisUrl,
    WECHAT_APP_ID: APP,
    WECHAT_APP_SECRET: 's',
    WECHAT_TOKEN: 'tok123',
    ADMIN_PASSWORD: 'correct horse',
    ADMIN_API_KEY: KEY,
  };
  config = loadConfig(env);
  redis = createRedis(redisUrl, 'client');
  queues = new Queues(redis);
  const hosted = new Registry();
  new Counter({ name: 'wxkf_pushes_total', help: 'pushes', registers: [hosted] }).inc(7);
  app = await buildAdminApp(config, createLogger('admin-test', { level: 'silent' }), { queues, registries: [hosted] });
  // These users wrote a moment ago: their send windows are open (conversation.test.ts covers refusals).
  const conversations = new Conversations(redis);
  for (const u of ['o_user', 'o', 'o_rate', 'o_idem']) await conversations.grant(APP, u, WINDOW_GRANTS.message);
});
afterAll(async () => {
  await app.close();
  await queues.close();
  redis.disconnect();
});

describe('admin listener', () => {
  it('refuses the dashboard and metrics without the password', async () => {
    for (const url of ['/ui', '/metrics', '/']) {
      expect((await app.inject({ url })).statusCode, url).toBe(401);
      expect((await app.inject({ url, headers: { authorization: basic('admin', 'wrong') } })).statusCode, url).toBe(
        401,
      );
      expect(
        (await app.inject({ url, headers: { authorization: basic('root', 'correct horse') } })).statusCode,
        url,
      ).toBe(401);
    }
  });

  it('serves the dashboard and metrics with it', async () => {
    const auth = { authorization: basic('admin', 'correct horse') };
    const ui = await app.inject({ url: '/ui', headers: auth });
    expect(ui.statusCode).toBe(200);
    expect(ui.body).toContain('<html');
    const queuesApi = await app.inject({ url: '/ui/api/queues', headers: auth });
    expect(
      queuesApi
        .json()
        .queues.map((q: { name: string }) => q.name)
        .sort(),
    ).toEqual(['inbound', 'outbound']);
    const metrics = await app.inject({ url: '/metrics', headers: auth });
    expect(metrics.body).toContain('wxkf_pushes_total 7');
    expect(metrics.body).toMatch(/wxkf_queue_jobs\{queue="outbound",state="waiting"\} \d+/);
    expect(metrics.body).toContain('wxkf_queue_oldest_waiting_seconds{queue="inbound"}');
    expect(metrics.body).toContain('process_cpu_user_seconds_total');
  });

  it('queues custom messages sent through the API', async () => {
    const res = await send({
      appId: config.accounts[0]?.appId,
      touser: 'o_user',
      messages: [{ msgtype: 'text', text: { content: 'hello from an agent' } }],
    });
    expect(res.statusCode).toBe(202);
    const job = await outbound().getJob(res.json().jobId);
    expect(job?.queueName).toBe(OUTBOUND_QUEUE);
    expect(job?.id).toMatch(/^api-[0-9a-f-]{36}$/);
    expect(job?.data).toMatchObject({ touser: 'o_user', source: 'api', sent: 0, msgKey: job?.id });
  });

  it.each([
    ['no key', '', {}, 401],
    ['a wrong key', 'Bearer nope', {}, 401],
    [
      'an unknown account',
      undefined,
      { appId: 'wxnobody', touser: 'o', messages: [{ msgtype: 'text', text: { content: 'x' } }] },
      400,
    ],
    [
      'no touser',
      undefined,
      { appId: 'wxadminmp00000001', messages: [{ msgtype: 'text', text: { content: 'x' } }] },
      400,
    ],
    ['no messages', undefined, { appId: 'wxadminmp00000001', touser: 'o', messages: [] }, 400],
    [
      'a type a Mini Program cannot send',
      undefined,
      { appId: 'wxadminmp00000001', touser: 'o', messages: [{ msgtype: 'wxcard', wxcard: { card_id: 'c' } }] },
      400,
    ],
    [
      'a local file (only rules may use files)',
      undefined,
      { appId: 'wxadminmp00000001', touser: 'o', messages: [{ msgtype: 'image', image: { file: '/etc/passwd' } }] },
      400,
    ],
  ])('refuses %s', async (_label, auth, body, status) => {
    const before = (await queues.stats()).outbound?.waiting;
    const res = await send(body, auth ?? `Bearer ${KEY}`);
    expect(res.statusCode).toBe(status);
    expect(res.json().message).toBeTypeOf('string');
    expect((await queues.stats()).outbound?.waiting).toBe(before);
  });

  it('names the bad message and field', async () => {
    const res = await send({
      appId: 'wxadminmp00000001',
      touser: 'o',
      messages: [
        { msgtype: 'text', text: { content: 'ok' } },
        { msgtype: 'text', text: {} },
      ],
    });
    expect(res.json().message).toBe('messages.1: text.content: Invalid input: expected string, received undefined');
  });

  it.each([
    ['a touser that is no OpenID', { touser: 'o user/..', messages: [text('x')] }, 400, 'touser'],
    ['a touser longer than 64', { touser: 'o'.repeat(65), messages: [text('x')] }, 400, 'touser'],
    ['more than 20 messages', { touser: 'o', messages: Array.from({ length: 21 }, () => text('x')) }, 400, 'messages'],
    ['a text over 2048 bytes', { touser: 'o', messages: [text('中'.repeat(683))] }, 400, 'messages'],
    [
      'a __proto__ key',
      { touser: 'o', messages: [JSON.parse('{"msgtype":"text","text":{"content":"x"},"__proto__":{"a":1}}')] },
      400,
      undefined,
    ],
    ['a 500 kB touser', { touser: 'o'.repeat(500_000), messages: [text('x')] }, 413, undefined],
  ])('bounds the send API: refuses %s', async (_label, body, status, error) => {
    const before = await outboundCount();
    const payload = JSON.stringify({ appId: APP, ...body });
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/messages',
      payload,
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    });
    expect(res.statusCode).toBe(status);
    expect(res.body.length).toBeLessThan(300);
    if (error) expect(res.json().error).toBe(error);
    expect(await outboundCount()).toBe(before);
  });

  it('takes a body up to 64 kB', async () => {
    const body = {
      appId: APP,
      touser: 'o_big',
      messages: Array.from({ length: 20 }, () => text('a'.repeat(2048))),
      ignoreWindow: true, // 20 messages are more than a window allows
    };
    expect(JSON.stringify(body).length).toBeLessThan(SEND_API_BODY_LIMIT);
    expect((await send(body)).statusCode).toBe(202);
  });
});

describe('admin listener: credentials', () => {
  it('compares the whole user and password, whichever is wrong or however long', async () => {
    for (const auth of [
      basic('admin', 'correct horse!'),
      basic('admin', 'correct hors'),
      basic('admin!', 'correct horse'),
      basic('', 'correct horse'),
      basic('adm', ''),
      basic('admin', `correct horse${'x'.repeat(10_000)}`),
    ]) {
      const res = await app.inject({ url: '/metrics', headers: { authorization: auth }, remoteAddress: '10.0.0.9' });
      expect(res.statusCode).toBe(401);
    }
  });

  it('after 10 wrong passwords from one address the right password and API key still pass; the guessed user name is refused (429)', async () => {
    // An app of its own: the failure counts of the other tests' wrong logins stay out of this one.
    const fresh = await buildAdminApp(config, createLogger('admin-test', { level: 'silent' }), { queues });
    // Every client behind one proxy (or the compose port mapping) has one address.
    const from = (authorization: string) =>
      fresh.inject({ url: '/metrics', headers: { authorization }, remoteAddress: '10.0.0.1' });
    const sendWith = (authorization: string) =>
      fresh.inject({
        method: 'POST',
        url: '/api/v1/messages',
        payload: { appId: APP, touser: 'o', messages: [text('x')], ignoreWindow: true },
        headers: { authorization },
        remoteAddress: '10.0.0.1',
      });
    for (let i = 0; i < 12; i++) expect((await from(ADMIN)).statusCode).toBe(200); // successes do not count
    for (let i = 0; i < 10; i++) expect((await from(basic('admin', `guess${i}`))).statusCode).toBe(401);
    const refused = await from(basic('admin', 'guess10'));
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toEqual({
      error: 'rate_limited',
      message: expect.stringContaining('too many failed logins'),
    });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60);
    // The right credentials are never refused: the password, from the same address, and the send API's key.
    expect((await from(ADMIN)).statusCode).toBe(200);
    expect((await sendWith(`Bearer ${KEY}`)).statusCode).toBe(202);
    // A user name that is not the admin's stays refused for the minute, whatever password comes with it.
    for (let i = 0; i < 10; i++) expect((await from(basic('root', `guess${i}`))).statusCode).toBe(401);
    expect((await from(basic('root', 'correct horse'))).statusCode).toBe(429);
    expect((await from(basic('root', 'another'))).statusCode).toBe(429);
    expect((await from(ADMIN)).statusCode).toBe(200);
    await fresh.close();
  });

  it('counts wrong send-API keys per presented key: that key is refused (429), the right key is not', async () => {
    const fresh = await buildAdminApp(config, createLogger('admin-test', { level: 'silent' }), { queues });
    const sendWith = (authorization: string) =>
      fresh.inject({
        method: 'POST',
        url: '/api/v1/messages',
        payload: { appId: APP, touser: 'o', messages: [text('x')], ignoreWindow: true },
        headers: { authorization },
        remoteAddress: '10.0.0.3',
      });
    for (let i = 0; i < 10; i++) expect((await sendWith('Bearer an-old-key-0123456789')).statusCode).toBe(401);
    const refused = await sendWith('Bearer an-old-key-0123456789');
    expect(refused.statusCode).toBe(429);
    expect(refused.json().error).toBe('rate_limited');
    expect((await sendWith(`Bearer ${KEY}`)).statusCode).toBe(202);
    expect((await sendWith('Bearer another-key-0123456789')).statusCode).toBe(401);
    await fresh.close();
  });

  it('limits send-API calls per client (the limit is configurable; 600 a minute by default)', async () => {
    const limited = await buildAdminApp(config, createLogger('admin-test', { level: 'silent' }), {
      queues,
      limits: { sendsPerMinute: 3 },
    });
    const call = (remoteAddress: string) =>
      limited.inject({
        method: 'POST',
        url: '/api/v1/messages',
        payload: { appId: APP, touser: 'o_rate', messages: [text('x')] },
        headers: { authorization: `Bearer ${KEY}` },
        remoteAddress,
      });
    for (let i = 0; i < 3; i++) expect((await call('10.0.1.1')).statusCode).toBe(202);
    const refused = await call('10.0.1.1');
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toEqual({
      error: 'rate_limited',
      message: expect.stringContaining('at most 3 send API calls a minute'),
    });
    expect((await call('10.0.1.2')).statusCode).toBe(202);
    await limited.close();
  });

  it('takes the client address from X-Forwarded-For only from a proxy in ADMIN_TRUST_PROXY', async () => {
    const behind = (trust: string | undefined) =>
      buildAdminApp(
        loadConfig({ ...env, ...(trust ? { ADMIN_TRUST_PROXY: trust } : {}) }),
        createLogger('admin-test', { level: 'silent' }),
        { queues, limits: { sendsPerMinute: 2 } },
      );
    const call = (app: FastifyInstance, client: string, remoteAddress = '10.0.2.1') =>
      app.inject({
        method: 'POST',
        url: '/api/v1/messages',
        payload: { appId: APP, touser: 'o_rate', messages: [text('x')] },
        headers: { authorization: `Bearer ${KEY}`, 'x-forwarded-for': client },
        remoteAddress,
      });
    const trusting = await behind('10.0.2.0/24, loopback');
    for (let i = 0; i < 2; i++) expect((await call(trusting, '203.0.113.1')).statusCode).toBe(202);
    expect((await call(trusting, '203.0.113.1')).statusCode).toBe(429);
    expect((await call(trusting, '203.0.113.2')).statusCode).toBe(202); // another client behind the proxy
    // From an address that is not a trusted proxy, the header is ignored: the connection's address counts.
    for (let i = 0; i < 2; i++) expect((await call(trusting, `198.51.100.${i}`, '10.0.3.1')).statusCode).toBe(202);
    expect((await call(trusting, '198.51.100.9', '10.0.3.1')).statusCode).toBe(429);
    await trusting.close();
    const plain = await behind(undefined);
    for (let i = 0; i < 2; i++) expect((await call(plain, `203.0.113.${i}`)).statusCode).toBe(202);
    expect((await call(plain, '203.0.113.9')).statusCode).toBe(429);
    await plain.close();
    expect(() => loadConfig({ ...env, ADMIN_TRUST_PROXY: 'my-proxy.example' })).toThrow(/ADMIN_TRUST_PROXY/);
  });
});

describe('send API: Idempotency-Key', () => {
  const body = (content: string) => ({ appId: APP, touser: 'o_idem', messages: [text(content)] });
  const withKey = (key: string, content = 'once') => send(body(content), `Bearer ${KEY}`, { 'idempotency-key': key });

  it('answers a repeated POST with the same job and queues nothing more; another key is another job', async () => {
    const before = await outboundCount();
    const first = await withKey('order-1001-shipped');
    expect(first.statusCode).toBe(202);
    const again = await withKey('order-1001-shipped');
    expect(again.statusCode).toBe(202);
    expect(again.json().jobId).toBe(first.json().jobId);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(await outboundCount()).toBe(before + 1);
    const other = await withKey('order-1002-shipped');
    expect(other.json().jobId).not.toBe(first.json().jobId);
    expect(await outboundCount()).toBe(before + 2);
  });

  it('holds for 24 h even once retention has removed the job', async () => {
    const first = await withKey('order-2001');
    await (await outbound().getJob(first.json().jobId))?.remove();
    const before = await outboundCount();
    const again = await withKey('order-2001');
    expect(again.json().jobId).toBe(first.json().jobId);
    expect(await outboundCount()).toBe(before);
    const ttl = await redis.pttl((await redis.keys('*idempotency*'))[0] ?? '');
    expect(ttl).toBeGreaterThan(24 * 3600_000 - 60_000);
  });

  it('makes one job of concurrent POSTs with one key', async () => {
    const before = await outboundCount();
    const answers = await Promise.all(Array.from({ length: 8 }, () => withKey('order-3001')));
    expect(new Set(answers.map((a) => a.statusCode))).toEqual(new Set([202]));
    expect(new Set(answers.map((a) => a.json().jobId)).size).toBe(1);
    expect(await outboundCount()).toBe(before + 1);
  });

  it('refuses a key reused with another body (422) and a malformed key (400)', async () => {
    await withKey('order-4001', 'first');
    const reused = await withKey('order-4001', 'second');
    expect(reused.statusCode).toBe(422);
    expect(reused.json().error).toBe('idempotency_key');
    expect((await withKey('k'.repeat(129))).statusCode).toBe(400);
    expect((await withKey('with space')).statusCode).toBe(400);
  });

  it('makes every POST without a key a new message', async () => {
    const a = await send(body('no key'));
    const b = await send(body('no key'));
    expect(a.json().jobId).not.toBe(b.json().jobId);
  });
});

describe('dashboard: job data is read-only', () => {
  const board = (method: 'POST' | 'PUT' | 'PATCH', url: string, payload?: object) =>
    app.inject({ method, url: `/ui/api/queues/outbound${url}`, headers: { authorization: ADMIN }, payload });

  it('cannot add a job or change a job’s data, but can retry, promote and clean', async () => {
    const before = await outboundCount();
    const added = await board('POST', '/add', {
      name: 'send',
      data: { appId: APP, touser: 'o', replies: [{ msgtype: 'image', image: { file: '/etc/passwd' } }], sent: 0 },
    });
    expect(added.statusCode).toBe(403);
    expect(await outboundCount()).toBe(before);

    // A failed job, made by a real (manual) worker: the queue is emptied first so it takes this one.
    await outbound().obliterate({ force: true });
    const data = { appId: APP, touser: 'o_board', msgKey: 'k', replies: [text('x')], sent: 0, source: 'api' };
    await outbound().add('send', data, { ...OUTBOUND_JOB_OPTIONS, jobId: 'board-failed' });
    const worker = new Worker(OUTBOUND_QUEUE, null, {
      connection: createRedis(redisUrl, 'worker'),
      prefix: QUEUE_PREFIX,
    });
    const taken = await worker.getNextJob('token');
    await taken?.moveToFailed(new UnrecoverableError('45015 response out of time limit'), 'token');
    await worker.close();
    expect(await (await outbound().getJob('board-failed'))?.getState()).toBe('failed');

    const edited = await board('PATCH', '/board-failed/update-data', { data: { ...data, touser: 'o_victim' } });
    expect(edited.statusCode).toBe(403);
    expect((await outbound().getJob('board-failed'))?.data.touser).toBe('o_board');
    expect((await board('PUT', '/board-failed/retry')).statusCode).toBe(204);
    expect(await (await outbound().getJob('board-failed'))?.getState()).toBe('waiting');

    await outbound().add('send', data, { ...OUTBOUND_JOB_OPTIONS, jobId: 'board-delayed', delay: 60_000 });
    expect((await board('PUT', '/board-delayed/promote')).statusCode).toBeLessThan(300);
    expect(await (await outbound().getJob('board-delayed'))?.getState()).toBe('waiting');
    expect((await board('PUT', '/clean/completed')).statusCode).toBeLessThan(300);
  });

  it('serves its page without links to other hosts, under a same-origin CSP', async () => {
    const ui = await app.inject({ url: '/ui', headers: { authorization: ADMIN } });
    expect(ui.statusCode).toBe(200);
    expect(ui.body).not.toMatch(/fonts\.googleapis|https?:\/\//);
    expect(ui.body).toContain('static/css/');
    expect(ui.headers['content-security-policy']).toContain("default-src 'self'");
  });
});

describe('metrics: paused accounts', () => {
  it('exports wxkf_account_paused per account and reason', async () => {
    const metrics = async () => (await app.inject({ url: '/metrics', headers: { authorization: ADMIN } })).body;
    expect(await metrics()).toContain(`wxkf_account_paused{app_id="${APP}",reason="operator"} 0`);
    await redis.set(keyspace.paused(APP), 'paused by an operator');
    expect(await metrics()).toContain(`wxkf_account_paused{app_id="${APP}",reason="operator"} 1`);
    await redis.set(keyspace.paused(APP), '45009 reach max api daily quota limit', 'PX', 60_000);
    const body = await metrics();
    expect(body).toContain(`wxkf_account_paused{app_id="${APP}",reason="quota"} 1`);
    expect(body).toContain(`wxkf_account_paused{app_id="${APP}",reason="operator"} 0`);
    await redis.del(keyspace.paused(APP));
  });
});
