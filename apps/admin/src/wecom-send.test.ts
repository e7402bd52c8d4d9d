import { writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@wx-kf/shared/config';
import { Conversations, WINDOW_GRANTS } from '@wx-kf/shared/conversation';
import { Handoffs } from '@wx-kf/shared/handoff';
import { createLogger } from '@wx-kf/shared/log';
import type { OutboundJobData } from '@wx-kf/shared/queue';
import { createRedis } from '@wx-kf/shared/redis';
import { isolatedRedisUrl } from '@wx-kf/testkit';
import { Simulator } from '@wx-kf/wechat-sim';
import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAdminApp } from './admin.js';
import { Queues } from './queues.js';

// The send API for a WeCom customer-service corp: touser is the customer's external_userid, open_kfid the
// account it wrote to; the window, handoff and message checks are the other accounts'.
const KEY = 'a-wecom-api-key-of-32-characters';
const CORP = 'wwsendapicorp0001';
const MP = 'wxsendapimp000001';
const KF = 'wkSendApiKf0000000000000001';
const CUSTOMER = 'wmSendApiCustomer0000000000001';
const AES_KEY = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG';
// WeCom's API, for the session endpoints (kf/service_state).
const sim = new Simulator({
  accounts: [],
  wecom: {
    corps: [
      {
        corpId: CORP,
        secret: 'kf-secret',
        token: 'wecomSendTok',
        aesKey: AES_KEY,
        kfAccounts: [{ openKfId: KF, name: 'kf' }],
        servicers: ['agent1'],
      },
    ],
  },
});
let redis: Redis;
let queues: Queues;
let app: FastifyInstance;

const send = (body: object) =>
  app.inject({ method: 'POST', url: '/api/v1/messages', payload: body, headers: { authorization: `Bearer ${KEY}` } });
const text = (content: string) => ({ msgtype: 'text', text: { content } });
const toCustomer = (extra: object = {}) => ({ appId: CORP, touser: CUSTOMER, messages: [text('你好')], ...extra });
const outbound = () => queues.outbounds[0] as Queue<OutboundJobData>;

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wx-kf-wecom-send-'));
  const accounts = join(dir, 'accounts.json');
  writeFileSync(
    accounts,
    JSON.stringify({
      accounts: [
        { appId: CORP, appSecret: 'kf-secret', token: 'wecomSendTok', aesKey: AES_KEY, type: 'wecom-kf' },
        { appId: MP, appSecret: 'mp-secret', token: 'mpSendTok', type: 'miniprogram' },
      ],
    }),
  );
  const redisUrl = await isolatedRedisUrl();
  await sim.listen();
  const config = loadConfig({
    REDIS_URL: redisUrl,
    WECOM_API_BASE: sim.url,
    WECHAT_ACCOUNTS_FILE: accounts,
    ADMIN_PASSWORD: 'wecom-admin-pass',
    ADMIN_API_KEY: KEY,
  });
  redis = createRedis(redisUrl, 'client');
  queues = new Queues(redis);
  app = await buildAdminApp(config, createLogger('wecom-send-test', { level: 'silent' }), { queues });
  // The customer wrote a moment ago: WeCom's window (5 sends in 48 h), kept by the same ledger.
  const conversations = new Conversations(redis);
  await conversations.grant(CORP, CUSTOMER, WINDOW_GRANTS.message);
  await conversations.grant(MP, 'o_mp_user', WINDOW_GRANTS.message);
});
afterAll(async () => {
  await sim.close();
  await app.close();
  await queues.close();
  redis.disconnect();
});

describe('POST /api/v1/messages for a wecom-kf account', () => {
  it('queues the replies with the open_kfid they come from (202)', async () => {
    const res = await send(toCustomer({ open_kfid: KF }));
    expect(res.statusCode).toBe(202);
    const job = await outbound().getJob(res.json().jobId);
    expect(job?.data).toMatchObject({
      appId: CORP,
      touser: CUSTOMER,
      openKfId: KF,
      source: 'api',
      replies: [text('你好')],
    });
  });

  it('refuses a call without open_kfid, or with one that is no open_kfid (400)', async () => {
    const without = await send(toCustomer());
    expect(without.statusCode).toBe(400);
    expect(without.json()).toEqual({
      error: 'open_kfid',
      message: 'open_kfid is required for a WeCom customer-service account',
    });
    expect((await send(toCustomer({ open_kfid: 'wk/../x' }))).statusCode).toBe(400);
    expect((await send(toCustomer({ open_kfid: '' }))).statusCode).toBe(400);
  });

  it('refuses open_kfid for a WeChat account (400)', async () => {
    const res = await send({ appId: MP, touser: 'o_mp_user', open_kfid: KF, messages: [text('x')] });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'open_kfid', message: expect.stringContaining('only for a WeCom') });
    // Without it, the same call goes out.
    expect((await send({ appId: MP, touser: 'o_mp_user', messages: [text('x')] })).statusCode).toBe(202);
  });

  it('refuses what kf/send_msg does not take: a link (400), naming the message', async () => {
    const link = { msgtype: 'link', link: { title: 't', description: 'd', url: 'https://example.com', thumb_url: '' } };
    const res = await send(toCustomer({ open_kfid: KF, messages: [text('ok'), link] }));
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'messages', message: expect.stringMatching(/^messages\.1: /) });
  });

  it('refuses a fallback notification: WeCom has none (400), and the notifications endpoint too', async () => {
    const data = { thing1: { value: '发货了' } };
    const fallback = { kind: 'subscribe', template_id: 'TPL_x', data };
    const res = await send(toCustomer({ open_kfid: KF, fallback }));
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'fallback' });
    const notify = await app.inject({
      method: 'POST',
      url: '/api/v1/notifications',
      payload: { appId: CORP, touser: CUSTOMER, template_id: 'TPL_x', data },
      headers: { authorization: `Bearer ${KEY}` },
    });
    expect(notify.statusCode).toBe(400);
    expect(notify.json().message).toContain('WeCom');
  });

  it('applies the window and the handoff as for other accounts (409)', async () => {
    const stranger = await send({ ...toCustomer({ open_kfid: KF }), touser: 'wmNeverWrote000000000000001' });
    expect(stranger.statusCode).toBe(409);
    expect(stranger.json()).toMatchObject({ error: 'window' });
    const six = await send(toCustomer({ open_kfid: KF, messages: Array.from({ length: 6 }, () => text('x')) }));
    expect(six.statusCode).toBe(409);
    const handoffs = new Handoffs({ redis, idleMs: 60_000 });
    await handoffs.open(CORP, CUSTOMER, { reason: 'operator', force: true });
    try {
      expect((await send(toCustomer({ open_kfid: KF }))).json()).toMatchObject({ error: 'handoff' });
      expect((await send(toCustomer({ open_kfid: KF, ignoreHandoff: true }))).statusCode).toBe(202);
    } finally {
      await handoffs.close(CORP, CUSTOMER, { reason: 'operator', force: true });
    }
  });

  it('answers a retry with the same Idempotency-Key and body with the first job; another open_kfid is another body', async () => {
    const keyed = (body: object) =>
      app.inject({
        method: 'POST',
        url: '/api/v1/messages',
        payload: body,
        headers: { authorization: `Bearer ${KEY}`, 'idempotency-key': 'wecom-key-1' },
      });
    const first = await keyed(toCustomer({ open_kfid: KF }));
    expect(first.statusCode).toBe(202);
    const again = await keyed(toCustomer({ open_kfid: KF }));
    expect(again.json().jobId).toBe(first.json().jobId);
    expect((await keyed(toCustomer({ open_kfid: 'wkAnotherKf' }))).statusCode).toBe(422);
  });
});

describe('PUT and DELETE /api/v1/sessions for a wecom-kf account', () => {
  const session = (method: 'PUT' | 'DELETE' | 'GET', query = '', body?: object) =>
    app.inject({
      method,
      url: `/api/v1/sessions/${CORP}/wm_session_user${query}`,
      headers: { authorization: `Bearer ${KEY}` },
      ...(body ? { payload: body } : {}),
    });

  it("moves WeCom's session with the handoff: to the servicer, then ended; a move WeCom refuses is its 409", async () => {
    sim.wecom.customerMessage({ corpId: CORP, openKfId: KF, externalUserId: 'wm_session_user', content: 'hi' });
    expect((await session('PUT', '', { open_kfid: 'wk/../x' })).statusCode).toBe(400);
    const opened = await session('PUT', '', { open_kfid: KF, agent: 'agent1' });
    expect(opened.statusCode).toBe(200);
    expect(opened.json()).toMatchObject({
      handoff: { open: true, reason: 'operator', agent: 'agent1' },
      wecom: [{ openKfId: KF, state: 3, servicer: 'agent1' }],
    });
    const closed = await session('DELETE', `?open_kfid=${KF}`);
    expect(closed.json()).toMatchObject({ handoff: null, wecom: [{ openKfId: KF, state: 4 }] });
    expect(sim.wecom.sessions.get(CORP, KF, 'wm_session_user').state).toBe(4);
    const refused = await session('PUT', '', { open_kfid: KF });
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toEqual({ error: 'wecom', message: 'WeCom refused: 95016 state not allow trans' });
    expect((await session('GET')).json()).toMatchObject({ handoff: null, wecom: [{ openKfId: KF, state: 4 }] });
  });
});
