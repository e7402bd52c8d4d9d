import { createHash } from 'node:crypto';
import type { AccountConfig } from '@wx-kf/shared/config';
import { createLogger } from '@wx-kf/shared/log';
import { INBOUND_QUEUE, type InboundJobData, openQueue } from '@wx-kf/shared/queue';
import { createRedis } from '@wx-kf/shared/redis';
import { computeMsgSignature, decodeAesKey, encryptMessage } from '@wx-kf/shared/wechat';
import { isolatedRedisUrl, LogCapture } from '@wx-kf/testkit';
import { buildPush, sampleMessage } from '@wx-kf/wechat-sim';
import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from './app.js';

// WeCom customer service (微信客服) calls back on the WeChat push URL of a wecom-kf account (its CorpID as the
// AppID): an encrypted URL check, then encrypted notices that messages wait for a pull. Each callback is built
// here as WeCom builds it and goes through the real app and a real Redis.

const CORP = 'wwwecomtest000001';
const KF = 'wkWECOMtest0000000000000000001';
const AES = 'jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C';
const KEY = decodeAesKey(AES);
const corp: AccountConfig = {
  appId: CORP,
  appSecret: 'kf-secret',
  token: 'wecomCallbackToken',
  aesKey: AES,
  type: 'wecom-kf',
  security: 'safe',
};
const mp: AccountConfig = {
  appId: 'wxwecomneighbour1',
  appSecret: 'mp-secret',
  token: 'mpToken',
  type: 'miniprogram',
  security: 'any',
};

let redis: Redis;
let queue: Queue<InboundJobData>;
let app: FastifyInstance;
let only: FastifyInstance;
const logs = new LogCapture();

const CDATA = (value: string) => `<![CDATA[${value}]]>`;
const nowSeconds = () => String(Math.floor(Date.now() / 1000));
let nonceCounter = 0;
const nextNonce = () => String(100000 + nonceCounter++);

/** WeCom's signed query for an encrypted value (a fresh timestamp and nonce each time, as WeCom's retries). */
function signed(encrypt: string, options: { timestamp?: string; token?: string } = {}) {
  const timestamp = options.timestamp ?? nowSeconds();
  const nonce = nextNonce();
  const msg_signature = computeMsgSignature(options.token ?? corp.token, timestamp, nonce, encrypt);
  return { msg_signature, timestamp, nonce };
}

/** The decrypted callback's XML. */
function innerXml(fields: Record<string, string>): string {
  const body = Object.entries(fields)
    .map(([k, v]) => `<${k}>${k === 'CreateTime' ? v : CDATA(v)}</${k}>`)
    .join('');
  return `<xml>${body}</xml>`;
}

const notice = (token?: string, openKfId = KF) =>
  innerXml({
    ToUserName: CORP,
    CreateTime: '1700000000',
    MsgType: 'event',
    Event: 'kf_msg_or_event',
    ...(token === undefined ? {} : { Token: token }),
    OpenKfId: openKfId,
  });

/** The envelope WeCom posts: ToUserName, Encrypt and an empty AgentID. */
const envelope = (encrypt: string) =>
  `<xml><ToUserName>${CDATA(CORP)}</ToUserName><Encrypt>${CDATA(encrypt)}</Encrypt><AgentID>${CDATA('')}</AgentID></xml>`;

function callback(inner: string, options: { receiver?: string; timestamp?: string } = {}) {
  const encrypt = encryptMessage(KEY, inner, options.receiver ?? CORP);
  return { query: signed(encrypt, options), body: envelope(encrypt) };
}

const post = (target: FastifyInstance, c: { query: Record<string, string>; body: string }, path = `/${CORP}`) =>
  target.inject({
    method: 'POST',
    url: `/wechat${path}?${new URLSearchParams(c.query)}`,
    payload: c.body,
    headers: { 'content-type': 'text/xml' },
  });
const get = (target: FastifyInstance, query: Record<string, string>, path = `/${CORP}`) =>
  target.inject({ method: 'GET', url: `/wechat${path}?${new URLSearchParams(query)}` });

/** A URL check: the challenge encrypted for `receiver`, signed, as WeCom sends it. */
function urlCheck(challenge: string, options: { receiver?: string; timestamp?: string } = {}) {
  const echostr = encryptMessage(KEY, challenge, options.receiver ?? CORP);
  return { ...signed(echostr, options), echostr };
}

const allJobs = () => queue.getJobs(['waiting', 'delayed', 'active', 'completed', 'failed']);
const pushLines = () => logs.records.filter((r) => r.msg === 'push');

beforeAll(async () => {
  redis = createRedis(await isolatedRedisUrl(), 'producer');
  queue = openQueue(INBOUND_QUEUE, redis);
  const logger = createLogger('ingress-wecom-test', { destination: logs });
  const ingress = { timestampToleranceSeconds: 300 };
  app = buildApp({ config: { accounts: [mp, corp], ingress }, queue, redis, logger });
  only = buildApp({ config: { accounts: [corp], ingress }, queue, redis, logger });
});
beforeEach(async () => {
  await queue.obliterate({ force: true });
  await redis.flushdb();
  logs.lines.length = 0;
});
afterAll(async () => {
  await app.close();
  await only.close();
  await queue.close();
  redis.disconnect();
});

describe('the URL check', () => {
  it('answers the decrypted echostr as text, on /wechat/<CorpID> and on /wechat for the only account', async () => {
    const res = await get(app, urlCheck('5927782489442352469'));
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.body).toBe('5927782489442352469');
    expect((await get(only, urlCheck('1234567890'), '')).body).toBe('1234567890');
    expect(logs.records.filter((r) => r.msg === 'url verification answered')).toHaveLength(2);
  });

  it('takes an echostr of a few hundred characters (a long challenge)', async () => {
    const challenge = 'c'.repeat(200);
    const check = urlCheck(challenge);
    expect(check.echostr.length).toBeGreaterThan(256);
    expect((await get(app, check)).body).toBe(challenge);
  });

  it('refuses a bad msg_signature (401), a foreign receiver id (400) and a stale timestamp (401), logging once', async () => {
    const bad = { ...urlCheck('1'), msg_signature: 'f'.repeat(40) };
    expect((await get(app, bad)).statusCode).toBe(401);
    expect((await get(app, urlCheck('1', { receiver: 'wwsomeoneelse0001' }))).statusCode).toBe(400);
    const stale = String(Math.floor(Date.now() / 1000) - 301);
    expect((await get(app, urlCheck('1', { timestamp: stale }))).statusCode).toBe(401);
    const { echostr: _, ...noEchostr } = urlCheck('1');
    expect((await get(app, noEchostr)).statusCode).toBe(400);
    const refused = logs.records.filter((r) => r.msg === 'url verification refused');
    expect(refused).toHaveLength(4);
    for (const r of refused) expect(String(r.reason).length).toBeLessThanOrEqual(200);
  });
});

describe('the pull notice', () => {
  it('is stored as one inbound job, keyed by its Token, and answered success', async () => {
    const res = await post(app, callback(notice('ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR')));
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.body).toBe('success');
    const jobs = await allJobs();
    expect(jobs).toHaveLength(1);
    expect(jobs[0]?.data).toMatchObject({
      appId: CORP,
      mode: 'safe',
      format: 'xml',
      transferred: false,
      message: {
        ToUserName: CORP,
        FromUserName: KF,
        CreateTime: '1700000000',
        MsgType: 'event',
        Event: 'kf_msg_or_event',
        OpenKfId: KF,
        Token: 'ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR',
        // The job id's source is the Token's digest, not the Token.
        MsgID: createHash('sha256')
          .update('ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR')
          .digest('hex')
          .slice(0, 32),
      },
    });
    expect(jobs[0]?.opts.attempts).toBe(12); // a notice outlasts an hour of WeCom being down
    expect(jobs[0]?.id).toBe(jobs[0]?.data.msgKey);
    const [line] = pushLines();
    expect(line).toMatchObject({ appId: CORP, mode: 'wecom', outcome: 'stored', status: 200, msgType: 'event' });
    expect(logs.text).not.toContain('ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR');
  });

  it('delivered three times (each signed anew) is one job, each answered success', async () => {
    const inner = notice('TokenRedelivered');
    for (let i = 0; i < 3; i++) expect((await post(app, callback(inner))).body).toBe('success');
    expect(await allJobs()).toHaveLength(1);
    expect(pushLines().map((r) => r.outcome)).toEqual(['stored', 'duplicate', 'duplicate']);
  });

  it('with two different Tokens is two jobs; without a Token the fields de-duplicate', async () => {
    await post(app, callback(notice('TokenOne')));
    await post(app, callback(notice('TokenTwo')));
    expect(await allJobs()).toHaveLength(2);
    await post(app, callback(notice(undefined)));
    await post(app, callback(notice(undefined)));
    const jobs = await allJobs();
    expect(jobs).toHaveLength(3);
    const tokenless = jobs.find((j) => j.data.message.Token === undefined);
    expect(tokenless?.data.message).not.toHaveProperty('MsgID');
  });

  it('writes no conversation state for the open_kfid (no window, order or timeline)', async () => {
    await post(app, callback(notice('TokenNoConversation')));
    expect(await allJobs()).toHaveLength(1);
    const keys = await redis.keys('*');
    const conversation = keys.filter((k) => /:(window|order|timeline|handoff|ctx):/.test(k) || k.includes(KF));
    expect(conversation).toEqual([]);
  });

  it('answers any other WeCom event success, storing nothing', async () => {
    const other = innerXml({
      ToUserName: CORP,
      CreateTime: '1700000000',
      MsgType: 'event',
      Event: 'kf_account_auth_change',
    });
    const res = await post(app, callback(other));
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('success');
    expect(await allJobs()).toHaveLength(0);
    expect(pushLines()).toMatchObject([
      { appId: CORP, mode: 'wecom', outcome: 'ignored', event: 'kf_account_auth_change' },
    ]);
  });

  it('with an OpenKfId unfit for a key is refused (400); with an unusable Token it is stored without one', async () => {
    const bad = await post(app, callback(notice('TokenBadKf', 'wk:bad kf')));
    expect(bad.statusCode).toBe(400);
    expect(await allJobs()).toHaveLength(0);
    const res = await post(app, callback(notice('x'.repeat(600))));
    expect(res.statusCode).toBe(200);
    const [job] = await allJobs();
    expect(job?.data.message).toMatchObject({ Event: 'kf_msg_or_event', OpenKfId: KF });
    expect(job?.data.message).not.toHaveProperty('Token');
  });
});

describe('refused callbacks store nothing', () => {
  const good = () => callback(notice('TokenRefused'));
  const tamper = (encrypt: string) => `${encrypt.slice(0, 10)}${encrypt[10] === 'A' ? 'B' : 'A'}${encrypt.slice(11)}`;

  it.each([
    ['broken XML', () => ({ ...good(), body: '<xml><Encrypt><![CDATA[abc' }), 400],
    ['no Encrypt', () => ({ ...good(), body: `<xml><ToUserName>${CDATA(CORP)}</ToUserName></xml>` }), 400],
    ['a JSON body', () => ({ ...good(), body: '{"Encrypt":"abc"}' }), 400],
    ['a bad msg_signature', () => ({ ...good(), query: { ...good().query, msg_signature: 'f'.repeat(40) } }), 401],
    [
      'a tampered ciphertext, signed anew',
      () => {
        const encrypt = tamper(encryptMessage(KEY, notice('TokenRefused'), CORP));
        return { query: signed(encrypt), body: envelope(encrypt) };
      },
      400,
    ],
    [
      'a tampered ciphertext, old signature',
      () => {
        const c = good();
        const encrypt = /CDATA\[([^\]]+)\]\]><\/Encrypt>/.exec(c.body)?.[1] ?? '';
        return { ...c, body: envelope(tamper(encrypt)) };
      },
      401,
    ],
    ['a foreign receiver id', () => callback(notice('TokenRefused'), { receiver: 'wwsomeoneelse0001' }), 400],
    ['a stale timestamp', () => callback(notice('TokenRefused'), { timestamp: '1600000000' }), 401],
    [
      'a signature made with another token',
      () => {
        const encrypt = encryptMessage(KEY, notice('TokenRefused'), CORP);
        return { query: signed(encrypt, { token: 'notTheToken' }), body: envelope(encrypt) };
      },
      401,
    ],
  ])('%s', async (_, build, status) => {
    const res = await post(app, build());
    expect(res.statusCode).toBe(status);
    expect(await allJobs()).toHaveLength(0);
    expect(pushLines()).toMatchObject([{ appId: CORP, mode: 'wecom', outcome: 'rejected', status }]);
  });

  it('a body that is not UTF-8 (400) or too big (413)', async () => {
    const c = good();
    const res = await app.inject({
      method: 'POST',
      url: `/wechat/${CORP}?${new URLSearchParams(c.query)}`,
      payload: Buffer.from([0x3c, 0x78, 0xff, 0xfe, 0x3e]),
      headers: { 'content-type': 'text/xml' },
    });
    expect(res.statusCode).toBe(400);
    const big = await post(app, { ...c, body: `${c.body}${' '.repeat(70_000)}` });
    expect(big.statusCode).toBe(413);
    expect(await allJobs()).toHaveLength(0);
  });
});

describe('while Redis is unreachable', () => {
  it('answers 503 (WeCom calls back again), never success', async () => {
    const dead = createRedis('redis://127.0.0.1:1', 'producer');
    const deadQueue = openQueue(INBOUND_QUEUE, dead);
    const logger = createLogger('ingress-wecom-outage-test', { destination: logs });
    const ingress = { timestampToleranceSeconds: 300 };
    const down = buildApp({
      config: { accounts: [corp], ingress },
      queue: deadQueue,
      redis: dead,
      logger,
      enqueueTimeoutMs: 300,
    });
    try {
      const res = await post(down, callback(notice('TokenOutage')));
      expect(res.statusCode).toBe(503);
      expect(pushLines()).toMatchObject([{ appId: CORP, mode: 'wecom', outcome: 'unavailable', status: 503 }]);
    } finally {
      await down.close();
      dead.disconnect();
    }
  });
});

describe('the WeChat account beside it', () => {
  it('still takes its plaintext pushes, with their conversation state', async () => {
    const push = buildPush({ account: mp, message: sampleMessage('text', { fromUser: 'o_neighbour' }), mode: 'plain' });
    const res = await app.inject({
      method: 'POST',
      url: `/wechat/${mp.appId}?${new URLSearchParams(push.query)}`,
      payload: push.body,
      headers: { 'content-type': push.contentType },
    });
    expect(res.body).toBe('success');
    expect(await allJobs()).toHaveLength(1);
    expect((await redis.keys('*')).some((k) => k.includes(':order:') && k.includes('o_neighbour'))).toBe(true);
    expect(pushLines()).toMatchObject([{ appId: mp.appId, mode: 'plain', outcome: 'stored' }]);
  });

  it('still echoes its own echostr as it came, and bounds it at 128 characters', async () => {
    const push = buildPush({ account: mp, message: sampleMessage('text'), mode: 'plain' });
    const { signature = '', timestamp = '', nonce = '' } = push.query;
    const check = (echostr: string) => get(app, { signature, timestamp, nonce, echostr }, `/${mp.appId}`);
    expect((await check('5927782489442352469')).body).toBe('5927782489442352469');
    expect((await check('9'.repeat(129))).statusCode).toBe(400);
  });
});
