import { type Config, loadConfig } from '@wx-kf/shared/config';
import { Handoffs } from '@wx-kf/shared/handoff';
import { createLogger } from '@wx-kf/shared/log';
import { createRedis, keyspaceOf, type RedisClient } from '@wx-kf/shared/redis';
import { validateReply } from '@wx-kf/shared/wechat';
import { isolatedRedisUrl, LogCapture } from '@wx-kf/testkit';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAdminApp } from './admin.js';
import { sha256 } from './digest.js';
import { Queues } from './queues.js';

// One error handler answers every refusal of the admin listener: `{ error, message }` with the documented status
// and headers (WeChat's refusals add `errcode` and `errmsg`, covered by kf.test.ts); anything else is a 500.
const KEY = 'an-error-handler-api-key-0123456';
const APP = 'wxerrorsmp0000001';
const MP_OPENID = 'o_refused';
const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
const ADMIN = basic('admin', 'errors-admin-pass');
const BEARER = `Bearer ${KEY}`;
const text = (content: string) => ({ msgtype: 'text', text: { content } });
const message = (body: object = {}) => ({ appId: APP, touser: MP_OPENID, messages: [text('x')], ...body });
const post = (payload: object, headers: Record<string, string> = {}): InjectOptions => ({
  method: 'POST',
  url: '/api/v1/messages',
  payload,
  headers: { authorization: BEARER, ...headers },
});

let env: Record<string, string>;
let config: Config;
let redis: RedisClient;
let queues: Queues;
let app: FastifyInstance;
const logs = new LogCapture();

beforeAll(async () => {
  env = {
    REDIS_URL: await isolatedRedisUrl(),
    WECHAT_APP_ID: APP,
    WECHAT_APP_SECRET: 's',
    WECHAT_TOKEN: 'errorsToken',
    WECHAT_HANDOFF: 'on',
    ADMIN_PASSWORD: 'errors-admin-pass',
    ADMIN_API_KEY: KEY,
  };
  config = loadConfig(env);
  redis = createRedis(config.redis, 'client');
  queues = new Queues(redis);
  app = await buildAdminApp(config, createLogger('admin-errors-test', { destination: logs }), { queues });
});
afterAll(async () => {
  await app.close();
  await queues.close();
  redis.disconnect();
});

/** Injects, and checks the answer is exactly `{ error, message }` with a short message. */
async function refused(request: InjectOptions | string, into = app) {
  const res = await into.inject(request);
  const body = res.json();
  expect(Object.keys(body).sort()).toEqual(['error', 'message']);
  expect(body.message).toBeTypeOf('string');
  expect(body.message.length).toBeLessThanOrEqual(200);
  return { status: res.statusCode, error: body.error, headers: res.headers, message: body.message };
}

describe('the admin error handler', () => {
  it.each([
    ['no credentials for /metrics', { url: '/metrics' }, 401, 'unauthorized'],
    [
      'a wrong password for /metrics',
      { url: '/metrics', headers: { authorization: basic('admin', 'no') } },
      401,
      'unauthorized',
    ],
    ['no credentials for the dashboard', { url: '/ui' }, 401, 'unauthorized'],
    ['no API key', { url: `/api/v1/users/${APP}/${MP_OPENID}` }, 401, 'unauthorized'],
    ['a wrong API key', { ...post(message()), headers: { authorization: 'Bearer nope' } }, 401, 'unauthorized'],
    ['a touser that is no OpenID', post(message({ touser: 'o user' })), 400, 'touser'],
    ['a malformed Idempotency-Key', post(message(), { 'idempotency-key': 'with space' }), 400, 'idempotency-key'],
    ['an unknown account in a body', post(message({ appId: 'wxnobody' })), 400, 'account'],
    [
      'an unknown account in a path',
      { url: `/api/v1/users/wxnobody/${MP_OPENID}`, headers: { authorization: BEARER } },
      404,
      'account',
    ],
    ['a message the account cannot send', post(message({ messages: [{ msgtype: 'wxcard' }] })), 400, 'messages'],
    ['a user without a send window', post(message()), 409, 'window'],
    [
      'agents of a Mini Program',
      { url: `/api/v1/agents/${APP}`, headers: { authorization: BEARER } },
      400,
      'unsupported',
    ],
    ['a body over 64 kB', post(message({ touser: 'o'.repeat(70_000) })), 413, 'too_large'],
    [
      'a body of another type',
      { ...post({}), payload: '<xml/>', headers: { authorization: BEARER, 'content-type': 'application/xml' } },
      415,
      'content_type',
    ],
    [
      'a JSON body that does not parse',
      { ...post({}), payload: '{"touser": ', headers: { authorization: BEARER, 'content-type': 'application/json' } },
      400,
      'request',
    ],
    ['an unknown path', { url: '/nowhere' }, 404, 'not_found'],
  ] satisfies [string, InjectOptions, number, string][])('refuses %s', async (_label, request, status, error) => {
    expect(await refused(request)).toMatchObject({ status, error });
  });

  it('asks the browser for the password on 401 of basic auth, not for the API key', async () => {
    expect((await refused('/ui')).headers['www-authenticate']).toBe('Basic realm="wx-kf admin", charset="UTF-8"');
    expect(
      (await refused(post(message(), { authorization: 'Bearer no' }))).headers['www-authenticate'],
    ).toBeUndefined();
  });

  it('answers 409 handoff while the user is with a human agent', async () => {
    const handoffs = new Handoffs({ redis, idleMs: 60_000 });
    await handoffs.open(APP, 'o_with_agent', { reason: 'operator', force: true });
    expect(await refused(post(message({ touser: 'o_with_agent' })))).toMatchObject({ status: 409, error: 'handoff' });
  });

  it('answers 422 for a key reused with another body, 409 with Retry-After while it is pending', async () => {
    const withKey = (key: string, body: object) =>
      post(message({ ignoreWindow: true, ...body }), { 'idempotency-key': key });
    expect((await app.inject(withKey('order-1', { messages: [text('first')] }))).statusCode).toBe(202);
    expect(await refused(withKey('order-1', { messages: [text('second')] }))).toMatchObject({
      status: 422,
      error: 'idempotency_key',
    });
    // Another request holds the key for this very body: after waiting 2 s for its job, 409.
    const replies = [validateReply(text('x'), 'miniprogram')];
    const digest = sha256(JSON.stringify([APP, MP_OPENID, replies, true, false]));
    await redis.set(keyspaceOf(redis).idempotency(APP, sha256('order-2')), `pending ${digest} another`, 'PX', 60_000);
    const pending = await refused(withKey('order-2', {}));
    expect(pending).toMatchObject({ status: 409, error: 'idempotency_pending' });
    expect(pending.headers['retry-after']).toBe('1');
  });

  it('answers 429 with Retry-After: too many calls, too many wrong logins (dashboard included), 403 without a key', async () => {
    const limited = await buildAdminApp(config, createLogger('admin-errors-test', { level: 'silent' }), {
      queues,
      limits: { sendsPerMinute: 1, failedLoginsPerMinute: 1 },
    });
    const user = { url: `/api/v1/users/${APP}/${MP_OPENID}`, headers: { authorization: BEARER } };
    expect((await limited.inject(user)).statusCode).toBe(200);
    const calls = await refused(user, limited);
    expect(calls).toMatchObject({ status: 429, error: 'rate_limited' });
    expect(Number(calls.headers['retry-after'])).toBeGreaterThan(0);
    const guess = { url: '/ui', headers: { authorization: basic('admin', 'guess') } };
    expect((await refused(guess, limited)).status).toBe(401);
    const logins = await refused(guess, limited);
    expect(logins).toMatchObject({ status: 429, error: 'rate_limited' });
    expect(Number(logins.headers['retry-after'])).toBeGreaterThan(0);
    expect(logins.headers['www-authenticate']).toBeUndefined();
    await limited.close();

    const keyless = await buildAdminApp(
      loadConfig({ ...env, ADMIN_API_KEY: '' }),
      createLogger('admin-errors-test', { level: 'silent' }),
      { queues },
    );
    expect(await refused(user, keyless)).toMatchObject({ status: 403, error: 'disabled' });
    await keyless.close();
  });

  it('answers an unexpected failure 500 internal, without its text, and logs it once', async () => {
    const lost = createRedis(config.redis, 'client');
    const broken = new Queues(lost);
    const failing = await buildAdminApp(config, createLogger('admin-errors-test', { destination: logs }), {
      queues: broken,
    });
    await failing.ready();
    lost.disconnect(); // every Redis command now fails
    const before = logs.lines.length;
    const answer = await failing.inject({
      url: `/api/v1/users/${APP}/${MP_OPENID}`,
      headers: { authorization: BEARER },
    });
    expect(answer.statusCode).toBe(500);
    expect(answer.json()).toEqual({ error: 'internal', message: 'internal error' });
    const lines = logs.records.slice(before).filter((r) => r.level === 50);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ msg: 'admin: request failed', route: '/api/v1/users/:appId/:openid' });
    await failing.close();
    await broken.close();
  });
});

describe('the admin error handler: bull-board', () => {
  it('leaves the dashboard its own answers (403 for a denied route)', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/ui/api/queues/outbound/add',
      headers: { authorization: ADMIN },
    });
    expect(res.statusCode).toBe(403);
  });
});
