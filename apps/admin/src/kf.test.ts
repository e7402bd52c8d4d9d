import { writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Config, loadConfig } from '@wx-kf/shared/config';
import { Handoffs } from '@wx-kf/shared/handoff';
import { createLogger } from '@wx-kf/shared/log';
import { createRedis } from '@wx-kf/shared/redis';
import { isolatedRedisUrl, LogCapture } from '@wx-kf/testkit';
import { Simulator } from '@wx-kf/wechat-sim';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildAdminApp } from './admin.js';
import { main } from './cli.js';
import { Queues } from './queues.js';

const KEY = 'a-kf-api-key-of-32-characters-ok';
const OA = 'wxkfadminoa000001';
const MP = 'wxkfadminmp000002';
const sim = new Simulator({
  accounts: [
    { appId: OA, appSecret: 'kf-oa-secret', type: 'officialaccount' },
    { appId: MP, appSecret: 'kf-mp-secret', type: 'miniprogram' },
  ],
});
const logs = new LogCapture();
let env: NodeJS.ProcessEnv;
let config: Config;
let redis: Redis;
let queues: Queues;
let app: FastifyInstance;
let handoffs: Handoffs;

type Json = Record<string, unknown>;
const call = async (method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, body?: unknown, headers = {}) => {
  const res = await app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${KEY}`, ...headers },
    ...(body === undefined ? {} : Buffer.isBuffer(body) ? { payload: body } : { payload: body as object }),
  });
  return { status: res.statusCode, body: (res.body ? JSON.parse(res.body) : {}) as Json };
};
/** Runs `pnpm queues …` in this process; resolves the exit code and what it printed. */
async function queuesCli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a) => void out.push(a.join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...a) => void err.push(a.join(' ')));
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const code = await main(args);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
    process.env = saved;
  }
}
const agent = (kf: string) => sim.kf.agentsOf(OA).get(kf);
const simAgent = (body: Json) => sim.app.inject({ method: 'POST', url: '/__sim/kf/agent', payload: body });
const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1]);

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wx-kf-admin-kf-'));
  const accounts = join(dir, 'accounts.json');
  writeFileSync(
    accounts,
    JSON.stringify({
      accounts: [
        { appId: OA, appSecret: 'kf-oa-secret', token: 'kfOaToken', type: 'officialaccount' },
        { appId: MP, appSecret: 'kf-mp-secret', token: 'kfMpToken', type: 'miniprogram', handoff: 'on' },
      ],
    }),
  );
  await sim.listen();
  const redisUrl = await isolatedRedisUrl();
  env = {
    REDIS_URL: redisUrl,
    WECHAT_API_BASE: sim.url,
    WECHAT_ACCOUNTS_FILE: accounts,
    ADMIN_PASSWORD: 'kf-admin-pass',
    ADMIN_API_KEY: KEY,
  };
  config = loadConfig(env);
  redis = createRedis(redisUrl, 'client');
  queues = new Queues(redis);
  handoffs = new Handoffs({ redis, idleMs: 60_000 });
  app = await buildAdminApp(config, createLogger('admin-kf-test', { destination: logs }), { queues });
});
afterAll(async () => {
  await app.close();
  await queues.close();
  redis.disconnect();
  await sim.close();
});

describe('agents on the admin API', () => {
  it('needs the bearer key', async () => {
    expect((await call('GET', `/api/v1/agents/${OA}`, undefined, { authorization: 'Bearer wrong' })).status).toBe(401);
  });

  it('adds, lists, updates, uploads an avatar, invites and deletes, with WeChat’s refusals as 4xx and its code', async () => {
    expect(await call('POST', `/api/v1/agents/${OA}`, { agent: 'alice@oaid', nickname: '客服小爱' })).toEqual({
      status: 201,
      body: { agent: 'alice@oaid' },
    });
    const again = await call('POST', `/api/v1/agents/${OA}`, { agent: 'alice@oaid', nickname: 'Alice' });
    expect(again).toMatchObject({ status: 409, body: { error: 'wechat', errcode: 65406 } });
    // Refused before WeChat is asked: the nickname is 17 characters, the account has no prefix@.
    const long = await call('POST', `/api/v1/agents/${OA}`, { agent: 'bob@oaid', nickname: 'x'.repeat(17) });
    expect(long).toMatchObject({ status: 400, body: { error: 'invalid' } });
    expect((await call('POST', `/api/v1/agents/${OA}`, { agent: 'bob', nickname: 'Bob' })).status).toBe(400);
    expect(agent('bob@oaid')).toBeUndefined();

    const list = await call('GET', `/api/v1/agents/${OA}`);
    expect(list.body.agents).toEqual([expect.objectContaining({ kf_account: 'alice@oaid', kf_nick: '客服小爱' })]);
    expect((await call('PATCH', `/api/v1/agents/${OA}/alice@oaid`, { nickname: 'Alice' })).status).toBe(200);
    expect(agent('alice@oaid')?.kf_nick).toBe('Alice');
    expect(await call('PATCH', `/api/v1/agents/${OA}/nobody@oaid`, { nickname: 'N' })).toMatchObject({
      status: 404,
      body: { errcode: 65401 },
    });

    const avatar = await call('PUT', `/api/v1/agents/${OA}/alice@oaid/avatar`, JPEG, { 'content-type': 'image/jpeg' });
    expect(avatar.status).toBe(200);
    expect(agent('alice@oaid')?.kf_headimgurl).toMatch(/^https:\/\//);
    const png = await call('PUT', `/api/v1/agents/${OA}/alice@oaid/avatar`, Buffer.from('\x89PNG....'), {
      'content-type': 'application/octet-stream',
    });
    expect(png).toMatchObject({ status: 400, body: { error: 'invalid' } });

    expect((await call('POST', `/api/v1/agents/${OA}/alice@oaid/invite`, { wechatId: 'alice_wx1' })).status).toBe(200);
    expect(await call('POST', `/api/v1/agents/${OA}/alice@oaid/invite`, { wechatId: 'alice_wx1' })).toMatchObject({
      status: 409,
      body: { errcode: 65411 },
    });
    await simAgent({ appId: OA, kf_account: 'alice@oaid', accept: true, online: true });
    expect((await call('GET', `/api/v1/agents/${OA}/online`)).body.agents).toEqual([
      { kf_account: 'alice@oaid', status: 1, kf_id: expect.any(String), accepted_case: 0 },
    ]);

    await call('POST', `/api/v1/agents/${OA}`, { agent: 'temp@oaid', nickname: 'Temp' });
    expect((await call('DELETE', `/api/v1/agents/${OA}/temp@oaid`)).status).toBe(200);
    expect(await call('DELETE', `/api/v1/agents/${OA}/temp@oaid`)).toMatchObject({
      status: 404,
      body: { errcode: 65401 },
    });
  });

  it('refuses a Mini Program in one line without calling WeChat', async () => {
    const before = sim.state.tokenRequestCount(MP);
    const res = await call('GET', `/api/v1/agents/${MP}`);
    expect(res).toMatchObject({ status: 400, body: { error: 'unsupported' } });
    expect(String(res.body.message)).toContain('Mini Programs and Mini Games have no agent or session API');
    expect((await call('GET', `/api/v1/sessions/${MP}/waiting`)).status).toBe(400);
    expect(sim.state.tokenRequestCount(MP)).toBe(before);
  });
});

describe('sessions on the admin API', () => {
  it('opens a session with an agent (and wx-kf’s handoff), shows, lists and closes it', async () => {
    await call('POST', `/api/v1/agents/${OA}`, { agent: 'carol@oaid', nickname: 'Carol' });
    const user = 'o_kf_user_1';
    expect(await call('PUT', `/api/v1/sessions/${OA}/${user}`, {})).toMatchObject({
      status: 400,
      body: { error: 'agent' },
    });
    // Not bound to a WeChat user yet, then offline: WeChat's codes.
    expect(await call('PUT', `/api/v1/sessions/${OA}/${user}`, { agent: 'carol@oaid' })).toMatchObject({
      status: 400,
      body: { errcode: 65402 },
    });
    await call('POST', `/api/v1/agents/${OA}/carol@oaid/invite`, { wechatId: 'carol_wx1' });
    await simAgent({ appId: OA, kf_account: 'carol@oaid', accept: true });
    expect(await call('PUT', `/api/v1/sessions/${OA}/${user}`, { agent: 'carol@oaid' })).toMatchObject({
      status: 400,
      body: { errcode: 65415 },
    });
    expect(await handoffs.isOpen(OA, user)).toBe(false);
    await simAgent({ appId: OA, kf_account: 'carol@oaid', online: true });
    const opened = await call('PUT', `/api/v1/sessions/${OA}/${user}`, { agent: 'carol@oaid' });
    expect(opened).toMatchObject({
      status: 200,
      body: { handoff: { open: true, agent: 'carol@oaid', reason: 'operator' }, wechat: { agent: 'carol@oaid' } },
    });
    expect(await handoffs.isOpen(OA, user)).toBe(true);
    expect((await call('GET', `/api/v1/sessions/${OA}/${user}`)).body).toMatchObject({
      wechat: { agent: 'carol@oaid' },
    });
    // The documented shape {open, agent?, reason, since}: since in ISO 8601, no stored event-order mark (issue 27).
    const shown = (await call('GET', `/api/v1/sessions/${OA}/${user}`)).body as { handoff: Record<string, unknown> };
    expect(Object.keys(shown.handoff).sort()).toEqual(['agent', 'open', 'reason', 'since']);
    expect(shown.handoff.since).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect((await call('GET', `/api/v1/sessions/${OA}?agent=carol@oaid`)).body.sessions).toEqual([
      { openid: user, createtime: expect.any(Number) },
    ]);
    expect((await call('GET', `/api/v1/sessions/${OA}?agent=zed@oaid`)).body).toMatchObject({ errcode: 65401 });

    // The bot's send API waits its turn while the user is with Carol.
    const msg = { appId: OA, touser: user, messages: [{ msgtype: 'text', text: { content: 'bot here' } }] };
    expect(await call('POST', '/api/v1/messages', msg)).toMatchObject({ status: 409, body: { error: 'handoff' } });
    // (The user has never written, so no send window either: ignoreWindow keeps this test about the handoff.)
    const forced = await call('POST', '/api/v1/messages', { ...msg, ignoreHandoff: true, ignoreWindow: true });
    expect(forced.status).toBe(202);

    const closed = await call('DELETE', `/api/v1/sessions/${OA}/${user}`);
    expect(closed).toMatchObject({ status: 200, body: { handoff: null, wechat: {} } });
    expect(await handoffs.isOpen(OA, user)).toBe(false);
    expect((await call('POST', '/api/v1/messages', { ...msg, ignoreWindow: true })).status).toBe(202);
  });

  it('lists the users waiting', async () => {
    await sim.app.inject({ method: 'POST', url: '/__sim/kf/waiting', payload: { appId: OA, openid: 'o_waiting_1' } });
    expect((await call('GET', `/api/v1/sessions/${OA}/waiting`)).body).toEqual({
      count: 1,
      users: [{ openid: 'o_waiting_1', latest_time: expect.any(Number) }],
    });
  });

  it('a Mini Program session is wx-kf’s handoff only', async () => {
    const opened = await call('PUT', `/api/v1/sessions/${MP}/o_mp_user`, {});
    expect(opened).toMatchObject({ status: 200, body: { handoff: { open: true, reason: 'operator' } } });
    expect(opened.body.wechat).toBeUndefined();
    expect((await call('DELETE', `/api/v1/sessions/${MP}/o_mp_user`)).body).toMatchObject({ handoff: null });
  });
});

describe('code2session', () => {
  const login = async (body: Json) =>
    JSON.parse((await sim.app.inject({ method: 'POST', url: '/__sim/login', payload: body })).body).code as string;

  it('answers the openid (and unionid), the session_key only when asked, and never logs it', async () => {
    const code = await login({ appId: MP, openid: 'o_login_1', unionid: 'u_1' });
    expect(await call('POST', '/api/v1/code2session', { appId: MP, code })).toEqual({
      status: 200,
      body: { openid: 'o_login_1', unionid: 'u_1' },
    });
    const asked = await call('POST', '/api/v1/code2session', {
      appId: MP,
      code: await login({ appId: MP, openid: 'o_login_2' }),
      includeSessionKey: true,
    });
    expect(asked.body).toEqual({ openid: 'o_login_2', session_key: sim.kf.sessionKeys.at(-1) });
    expect(sim.kf.sessionKeys).toHaveLength(2);
    for (const key of sim.kf.sessionKeys) expect(logs.text).not.toContain(key);
    expect(logs.text).toContain('code2session: openid issued');
    expect(logs.text).not.toContain('kf-mp-secret');
  });

  it('maps 40029, 45011 and 40226 to 4xx with WeChat’s code, and refuses an Official Account', async () => {
    expect(await call('POST', '/api/v1/code2session', { appId: MP, code: 'not-a-code' })).toMatchObject({
      status: 400,
      body: { error: 'wechat', errcode: 40029 },
    });
    sim.fail({ path: '/sns/jscode2session', script: [{ errcode: 45011, errmsg: 'api minute-quota reach limit' }] });
    expect(
      await call('POST', '/api/v1/code2session', { appId: MP, code: await login({ appId: MP, openid: 'o_l3' }) }),
    ).toMatchObject({ status: 429, body: { errcode: 45011 } });
    const risky = await login({ appId: MP, openid: 'o_l4', risky: true });
    expect(await call('POST', '/api/v1/code2session', { appId: MP, code: risky })).toMatchObject({
      status: 403,
      body: { errcode: 40226 },
    });
    expect(await call('POST', '/api/v1/code2session', { appId: OA, code: 'x' })).toMatchObject({
      status: 400,
      body: { error: 'unsupported' },
    });
    expect((await call('POST', '/api/v1/code2session', { appId: MP })).status).toBe(400);
  });
});

describe('pnpm queues agents / session / sessions', () => {
  it('runs each command against the simulator, with --json', async () => {
    expect(await queuesCli('agents', 'add', 'dave@oaid', 'Dave', '--account', OA)).toMatchObject({ code: 0 });
    const list = await queuesCli('agents', 'list', '--account', OA, '--json');
    expect(JSON.parse(list.out).map((a: Json) => a.kf_account)).toContain('dave@oaid');
    expect((await queuesCli('agents', 'update', 'dave@oaid', 'David', '--account', OA)).code).toBe(0);
    expect(agent('dave@oaid')?.kf_nick).toBe('David');
    const avatarFile = join(await mkdtemp(join(tmpdir(), 'wx-kf-avatar-')), 'a.jpg');
    writeFileSync(avatarFile, JPEG);
    expect((await queuesCli('agents', 'avatar', 'dave@oaid', avatarFile, '--account', OA)).code).toBe(0);
    expect((await queuesCli('agents', 'invite', 'dave@oaid', 'dave_wx01', '--account', OA)).code).toBe(0);
    await simAgent({ appId: OA, kf_account: 'dave@oaid', accept: true, online: true });
    const online = await queuesCli('agents', 'online', '--account', OA, '--json');
    expect(JSON.parse(online.out).map((a: Json) => a.kf_account)).toContain('dave@oaid');

    const open = await queuesCli('session', 'open', 'o_cli_1', '--agent', 'dave@oaid', '--account', OA);
    expect(open).toMatchObject({ code: 0 });
    expect(open.out).toContain('handed to a human');
    const shown = JSON.parse((await queuesCli('session', 'show', 'o_cli_1', '--account', OA, '--json')).out);
    expect(shown).toMatchObject({ handoff: { agent: 'dave@oaid' }, wechat: { agent: 'dave@oaid' } });
    const mine = JSON.parse(
      (await queuesCli('sessions', 'list', '--agent', 'dave@oaid', '--account', OA, '--json')).out,
    );
    expect(mine.sessions).toEqual([{ openid: 'o_cli_1', createtime: expect.any(Number) }]);
    expect((await queuesCli('session', 'close', 'o_cli_1', '--account', OA)).out).toContain('with the bot');
    const waiting = JSON.parse((await queuesCli('sessions', 'waiting', '--account', OA, '--json')).out);
    expect(waiting).toHaveProperty('count');
    expect((await queuesCli('agents', 'delete', 'dave@oaid', '--account', OA)).code).toBe(0);
    expect(agent('dave@oaid')).toBeUndefined();
  });

  it('says what WeChat refused, and that a Mini Program has no such API, in one line', async () => {
    const refused = await queuesCli('agents', 'delete', 'ghost@oaid', '--account', OA);
    expect(refused).toMatchObject({ code: 1, err: 'queues: WeChat refused: 65401 invalid kf_account' });
    const mp = await queuesCli('sessions', 'waiting', '--account', MP);
    expect(mp.code).toBe(1);
    expect(mp.err.split('\n')).toHaveLength(1);
    expect(mp.err).toContain('Mini Programs and Mini Games have no agent or session API');
    const noAccount = await queuesCli('agents', 'list');
    expect(noAccount).toMatchObject({ code: 1 });
    expect(noAccount.err).toContain('give the account');
  });
});
