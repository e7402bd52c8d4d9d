import { loadConfig } from '@wx-kf/shared/config';
import { Conversations } from '@wx-kf/shared/conversation';
import { Handoffs } from '@wx-kf/shared/handoff';
import { createLogger } from '@wx-kf/shared/log';
import { inboundJob } from '@wx-kf/shared/queue';
import { createRedis } from '@wx-kf/shared/redis';
import type { InboundMessage } from '@wx-kf/shared/wechat';
import { isolatedRedisUrl } from '@wx-kf/testkit';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAdminApp } from './admin.js';
import { Queues } from './queues.js';
import { ActionTokens } from './users-page/action-tokens.js';

const APP = 'wxuserspage000001';
const PASSWORD = 'users-page-pass';
const AUTH = { authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}` };
const HOSTILE = '<script>alert(1)</script>"\'&';
let redis: Redis;
let queues: Queues;
let app: FastifyInstance;
let handoffs: Handoffs;
let n = 0;

const get = (url: string, headers: Record<string, string> = {}) =>
  app.inject({ url, headers: { ...AUTH, ...headers } });
const post = (url: string, form: Record<string, string>, headers: Record<string, string> = {}) =>
  app.inject({
    method: 'POST',
    url,
    payload: new URLSearchParams(form).toString(),
    headers: { ...AUTH, 'content-type': 'application/x-www-form-urlencoded', ...headers },
  });
/** The token the confirm page of `path` carries. */
async function tokenOf(path: string): Promise<string> {
  const page = await get(path);
  expect(page.statusCode).toBe(200);
  return /name="token" value="([^"]+)"/.exec(page.body)?.[1] ?? '';
}

/** A push stored as the ingress stores it: its job, and the user's window, order and timeline. */
async function stored(openid: string, content: string, transferred = false): Promise<string> {
  const message = {
    ToUserName: 'gh_x',
    FromUserName: openid,
    CreateTime: String(Math.floor(Date.now() / 1000)),
    MsgType: 'text',
    Content: content,
    MsgId: String(7_000_000 + ++n),
  };
  const job = inboundJob(APP, message as InboundMessage, { mode: 'safe', format: 'xml', transferred });
  // In the ingress's order: the script (which skips a push whose job exists) before the job.
  const ingest = { receivedAt: Date.now(), transferred };
  await new Conversations(redis).ingest(APP, 'miniprogram', job.data.msgKey, message, ingest);
  await queues.inbounds[0]?.add(job.name, job.data, job.opts);
  return job.data.msgKey;
}

beforeAll(async () => {
  const url = await isolatedRedisUrl();
  redis = createRedis(url, 'client');
  queues = new Queues(redis);
  const env = {
    REDIS_URL: url,
    WECHAT_APP_ID: APP,
    WECHAT_APP_SECRET: 's',
    WECHAT_TOKEN: 'tok123',
    WECHAT_ACCOUNT_TYPE: 'miniprogram',
    WECHAT_HANDOFF: 'on',
    ADMIN_PASSWORD: PASSWORD,
  };
  app = await buildAdminApp(loadConfig(env), createLogger('users-page', { level: 'silent' }), { queues });
  handoffs = new Handoffs({ redis, idleMs: 60_000 });
});
afterAll(async () => {
  await app?.close();
  await queues?.close();
  redis?.disconnect();
});

describe('the users page', () => {
  it('asks for the login, serves a strict CSP, and looks a user up by account and OpenID', async () => {
    expect((await app.inject({ url: '/users' })).statusCode).toBe(401);
    const form = await get('/users');
    expect(form.statusCode).toBe(200);
    expect(form.headers['content-security-policy']).toContain("default-src 'none'");
    expect(form.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(form.headers['cache-control']).toBe('no-store');
    expect(form.body).not.toMatch(/<script|https?:\/\//);
    const found = await get(`/users?appId=${APP}&user=o_lookup`);
    expect(found.statusCode).toBe(303);
    expect(found.headers.location).toBe(`/users/${APP}/o_lookup`);
    expect((await get('/users?appId=wxnobody&user=o_lookup')).statusCode).toBe(404);
    const bad = await get(`/users?appId=${APP}&user=${encodeURIComponent('o <b>')}`);
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('o &lt;b&gt;');
    expect((await get('/users/style.css')).headers['content-type']).toContain('text/css');
  });

  it('shows the window, the handoff and the timeline, escaped, with transfers as transfers and job links', async () => {
    const user = 'o_page_user';
    const hello = await stored(user, HOSTILE);
    const transfer = await stored(user, '人工', true);
    await handoffs.open(APP, user, { reason: 'rule', force: true });
    const page = await get(`/users/${APP}/${user}`);
    expect(page.statusCode).toBe(200);
    expect(page.body).not.toContain('<script>alert');
    expect(page.body).toContain('&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;');
    expect(page.body).toMatch(/Open until <time>\d{4}-/);
    expect(page.body).toContain('5 send(s) left');
    expect(page.body).toContain('With a human agent since');
    expect(page.body).toContain('transferred to 客服');
    expect(page.body).toContain(`href="/ui/queue/inbound/${hello}"`);
    expect(page.body).toContain(`href="/ui/queue/inbound/${transfer}"`);
    expect(page.body).toContain(`href="/users/${APP}/${user}/close-handoff"`);
    expect((await get(`/users/${APP}/o_nobody_here`)).body).toContain('Nothing in the timeline');
  });

  it('still shows a transfer as a transfer once its job is gone (the timeline entry says so)', async () => {
    const user = 'o_page_old_transfer';
    const id = await stored(user, '人工', true);
    await queues.inbounds[0]?.remove(id);
    const page = (await get(`/users/${APP}/${user}`)).body;
    expect(page).toContain('<span class="dir transfer">transfer</span>');
    expect(page).toContain('(no longer kept)');
  });

  it("shows the user's subscribe grants, by template", async () => {
    const user = 'o_page_grants';
    await stored(user, 'hello');
    expect((await get(`/users/${APP}/${user}`)).body).toContain('None: a subscribe message needs the user to accept');
    const accept = [{ templateId: 'TPL_<ship>', change: 'add' as const }];
    await new Conversations(redis).grants.applyPush(APP, user, 'popup-1', accept, false);
    const page = (await get(`/users/${APP}/${user}`)).body;
    expect(page).toContain('<h2>Subscribe grants</h2><ul><li><code>TPL_&lt;ship&gt;</code> × 1</li></ul>');
  });

  it('closes a handoff only through its confirm page: no token, another user’s, or another origin is refused', async () => {
    const user = 'o_close_user';
    await handoffs.open(APP, user, { reason: 'operator', force: true });
    const path = `/users/${APP}/${user}/close-handoff`;
    const token = await tokenOf(path);
    const otherToken = await tokenOf(`/users/${APP}/o_someone_else/close-handoff`);
    const refused = [
      await post(path, {}),
      await post(path, { token: otherToken }),
      await post(path, { token: `${Date.now() + 60_000}.${'A'.repeat(43)}` }),
      await post(path, { token }, { origin: 'https://evil.example' }),
      await post(path, { token }, { 'sec-fetch-site': 'cross-site' }),
    ];
    expect(refused.map((r) => r.statusCode)).toEqual([403, 403, 403, 403, 403]);
    expect(await handoffs.isOpen(APP, user)).toBe(true);
    const done = await post(path, { token }, { origin: 'http://localhost:80', 'sec-fetch-site': 'same-origin' });
    expect(done.statusCode).toBe(303);
    expect(done.headers.location).toBe(`/users/${APP}/${user}?done=handoff-closed`);
    expect(await handoffs.isOpen(APP, user)).toBe(false);
    expect((await get(`/users/${APP}/${user}?done=handoff-closed`)).body).toContain('The handoff was closed');
  });

  it('erases a user once confirmed, and says what was erased', async () => {
    const user = 'o_erase_user';
    const jobId = await stored(user, 'please forget me');
    const path = `/users/${APP}/${user}/erase`;
    expect((await post(path, { token: 'nope' })).statusCode).toBe(403);
    expect(await queues.find(jobId)).toBeDefined();
    const erased = await post(path, { token: await tokenOf(path) });
    expect(erased.statusCode).toBe(200);
    expect(erased.body).toContain('timeline entries: 1');
    expect(erased.body).toContain('queue jobs: 1');
    expect(await queues.find(jobId)).toBeUndefined();
    expect((await get(`/users/${APP}/${user}`)).body).toContain('Nothing in the timeline');
  });
});

describe('ActionTokens', () => {
  it('binds a token to its action and user, and lets it expire', () => {
    let now = 1_800_000_000_000;
    const tokens = new ActionTokens('secret', () => now);
    const t = tokens.issue('erase', APP, 'o_a');
    expect(tokens.valid(t, 'erase', APP, 'o_a')).toBe(true);
    expect(tokens.valid(t, 'close-handoff', APP, 'o_a')).toBe(false);
    expect(tokens.valid(t, 'erase', APP, 'o_b')).toBe(false);
    expect(new ActionTokens('another secret', () => now).valid(t, 'erase', APP, 'o_a')).toBe(false);
    now += 10 * 60_000;
    expect(tokens.valid(t, 'erase', APP, 'o_a')).toBe(false);
  });
});
