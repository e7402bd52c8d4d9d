import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AccountConfig } from '@wx-kf/shared/config';
import { createLogger } from '@wx-kf/shared/log';
import { INBOUND_QUEUE, type InboundJobData, openQueue } from '@wx-kf/shared/queue';
import { createRedis } from '@wx-kf/shared/redis';
import {
  decodeAesKey,
  decryptMessage,
  type FieldMap,
  formatFields,
  parseFields,
  verifyMsgSignature,
} from '@wx-kf/shared/wechat';
import { isolatedRedisUrl, LogCapture } from '@wx-kf/testkit';
import { buildPush, type PushMode, SAMPLE_TYPES, sampleMessage, type Tamper } from '@wx-kf/wechat-sim';
import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import vectorFile from '../../../packages/shared/src/wechat/fixtures/vectors.json' with { type: 'json' };
import { buildApp } from './app.js';

const AES = 'jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C';
const mp: AccountConfig = {
  appId: 'wxmp0000000000001',
  appSecret: 'mp-app-secret-value',
  token: 'mpToken123',
  aesKey: AES,
  type: 'miniprogram',
  security: 'any',
};
const oa: AccountConfig = {
  appId: 'wxoa0000000000002',
  appSecret: 'oa-app-secret-value',
  token: 'oaToken456',
  aesKey: AES,
  type: 'officialaccount',
  security: 'safe',
};
const official = vectorFile.vectors;
const vecJson = official.find((v) => v.id === 'official-doc-mp-push-json') as (typeof official)[number];
const vecXml = official.find((v) => v.id === 'official-doc-openplatform-push-xml') as (typeof official)[number];
const officialAccount = (v: (typeof official)[number]): AccountConfig => ({
  appId: v.appId as string,
  appSecret: 'official-secret',
  token: v.token,
  aesKey: v.encodingAESKey,
  type: 'miniprogram',
  security: 'any',
});

const rulesDir = mkdtempSync(join(tmpdir(), 'wx-kf-ingress-'));
const rulesFile = join(rulesDir, 'rules.yaml');
writeFileSync(
  rulesFile,
  'rules:\n  - when: { msgType: text, contains: 人工 }\n    transfer: { kfAccount: agent1@test }\nfallback:\n  - { msgtype: text, text: { content: "收到" } }\n',
);

let redis: Redis;
let queue: Queue<InboundJobData>;
let app: FastifyInstance;
let officialApp: FastifyInstance;
/** The official vectors were signed in 2024: their app's clock is set to each vector's time. */
let officialClock = 0;
const logs = new LogCapture();

async function jobs(): Promise<InboundJobData[]> {
  return (await queue.getJobs(['waiting', 'delayed', 'active', 'completed', 'failed'])).map((j) => j.data);
}

function post(target: FastifyInstance, appId: string, push: ReturnType<typeof buildPush>) {
  return target.inject({
    method: 'POST',
    url: `/wechat/${appId}?${new URLSearchParams(push.query)}`,
    payload: push.body,
    headers: { 'content-type': push.contentType },
  });
}

beforeAll(async () => {
  redis = createRedis(await isolatedRedisUrl(), 'producer');
  queue = openQueue(INBOUND_QUEUE, redis);
  const logger = createLogger('ingress-test', { destination: logs });
  app = buildApp({
    config: { accounts: [mp, oa], ingress: { timestampToleranceSeconds: 1200 }, replyRulesFile: rulesFile },
    queue,
    redis,
    logger,
  });
  officialApp = buildApp({
    config: {
      accounts: [officialAccount(vecJson), officialAccount(vecXml)],
      ingress: { timestampToleranceSeconds: 300 },
    },
    queue,
    redis,
    logger,
    now: () => officialClock,
  });
});
beforeEach(async () => {
  await queue.obliterate({ force: true });
  await redis.flushdb();
});
afterAll(async () => {
  await app.close();
  await officialApp.close();
  await queue.close();
  redis.disconnect();
});

describe('POST /wechat/:appId stores every push', () => {
  const modes: PushMode[] = ['plain', 'compat', 'safe'];
  for (const mode of modes) {
    for (const format of ['xml', 'json'] as const) {
      it(`${mode} ${format}: every message type becomes one job with the exact message`, async () => {
        for (const type of SAMPLE_TYPES) {
          const message = sampleMessage(type, { toUser: 'gh_mp', fromUser: `o_${type}` });
          const res = await post(app, mp.appId, buildPush({ account: mp, message, mode, format }));
          expect(res.statusCode, type).toBe(200);
          expect(res.body).toBe('success');
        }
        const stored = await jobs();
        expect(stored).toHaveLength(SAMPLE_TYPES.length);
        for (const job of stored) {
          expect(job).toMatchObject({ appId: mp.appId, mode, format, transferred: false });
          expect(job.message.FromUserName).toBe(`o_${job.message.Event ?? job.message.MsgType}`);
        }
      });
    }
  }

  it('keeps a 19-digit MsgId exactly, and names the job after it', async () => {
    const message = sampleMessage('text', { msgId: '6054768590064713728' });
    await post(app, mp.appId, buildPush({ account: mp, message, mode: 'safe', format: 'json' }));
    const job = await queue.getJob(`${mp.appId}-m6054768590064713728`);
    expect(job?.data.message.MsgId).toBe('6054768590064713728');
    expect(job?.data.msgKey).toBe(job?.id);
  });

  it('answers /wechat without the AppID only when one account is configured', async () => {
    const single = buildApp({
      config: { accounts: [mp], ingress: { timestampToleranceSeconds: 3600 } },
      queue,
      redis,
      logger: createLogger('t', { level: 'silent' }),
    });
    const push = buildPush({ account: mp, message: sampleMessage('text') });
    const res = await single.inject({
      method: 'POST',
      url: `/wechat?${new URLSearchParams(push.query)}`,
      payload: push.body,
    });
    expect(res.body).toBe('success');
    expect(
      (await app.inject({ method: 'POST', url: `/wechat?${new URLSearchParams(push.query)}`, payload: push.body }))
        .statusCode,
    ).toBe(404);
    await single.close();
  });
});

describe('official vectors as real requests', () => {
  it.each([vecJson, vecXml])('$id is accepted and stored', async (v) => {
    officialClock = Number(v.timestamp) * 1000;
    const body = v.body ?? formatFields({ ToUserName: 'gh_97417a04a28d', Encrypt: v.encrypt as string }, 'xml');
    const query = new URLSearchParams({
      signature: v.urlSignature as string,
      timestamp: v.timestamp,
      nonce: v.nonce,
      encrypt_type: 'aes',
      msg_signature: v.msgSignature as string,
    });
    const res = await officialApp.inject({ method: 'POST', url: `/wechat/${v.appId}?${query}`, payload: body });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('success');
    const [job] = await jobs();
    expect(job?.message).toMatchObject({
      MsgType: 'event',
      Event: 'debug_demo',
      debug_str: 'hello world',
      CreateTime: v.timestamp,
    });
    expect(job?.mode).toBe('safe');
  });

  it('answers the official GET verification with the echostr, exactly', async () => {
    const v = official.find((x) => x.id === 'official-doc-get-verify') as (typeof official)[number];
    officialClock = Number(v.timestamp) * 1000;
    const query = new URLSearchParams({
      signature: v.signature as string,
      timestamp: v.timestamp,
      nonce: v.nonce,
      echostr: v.echostr as string,
    });
    const res = await officialApp.inject({ method: 'GET', url: `/wechat/${vecJson.appId}?${query}` });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('4375120948345356249');
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    query.set('nonce', '1');
    expect((await officialApp.inject({ method: 'GET', url: `/wechat/${vecJson.appId}?${query}` })).statusCode).toBe(
      401,
    );
  });

  it('accepts the official plaintext POST', async () => {
    const v = official.find((x) => x.id === 'official-doc-plaintext-post') as (typeof official)[number];
    officialClock = Number(v.timestamp) * 1000;
    const query = new URLSearchParams({ signature: v.signature as string, timestamp: v.timestamp, nonce: v.nonce });
    const res = await officialApp.inject({
      method: 'POST',
      url: `/wechat/${vecJson.appId}?${query}`,
      payload: v.plaintext,
      headers: { 'content-type': 'application/json' },
    });
    expect(res.body).toBe('success');
    expect((await jobs())[0]?.mode).toBe('plain');
  });
});

describe('bad input gets a 4xx, nothing is stored, the server keeps answering', () => {
  const tampers: [Tamper, number, string][] = [
    ['signature', 401, 'signature'],
    ['msg_signature', 401, 'signature'],
    ['ciphertext', 401, 'signature'],
    ['appid', 400, 'decrypt'],
    ['key', 400, 'decrypt'],
    ['padding', 400, 'decrypt'],
  ];
  it.each(tampers)('tampered %s → %i %s', async (tamper, status, error) => {
    const mode = tamper === 'signature' ? 'plain' : 'safe';
    const res = await post(
      app,
      mp.appId,
      buildPush({ account: mp, message: sampleMessage('text'), mode, format: 'xml', tamper }),
    );
    expect(res.statusCode).toBe(status);
    expect(res.json()).toMatchObject({ error });
    expect(await jobs()).toHaveLength(0);
  });

  const signedPlain = (body: string) => {
    const push = buildPush({ account: mp, message: sampleMessage('text') });
    return { ...push, body };
  };
  const signedSafe = (fields: FieldMap) => {
    const push = buildPush({ account: mp, message: sampleMessage('text'), mode: 'safe', format: 'json' });
    return { ...push, body: formatFields(fields, 'json') };
  };
  it.each([
    ['an empty body', signedPlain(''), 400],
    ['broken XML', signedPlain('<xml><ToUserName>'), 400],
    ['XML with a DOCTYPE', signedPlain('<!DOCTYPE x [<!ENTITY a "b">]><xml><A>&a;</A></xml>'), 400],
    ['a JSON array', signedPlain('[1]'), 400],
    ['a message without MsgType', signedPlain('{"ToUserName":"a","FromUserName":"b","CreateTime":1}'), 400],
    ['an encrypted push without Encrypt', signedSafe({ ToUserName: 'gh' }), 400],
  ])('%s', async (_label, push, status) => {
    const res = await post(app, mp.appId, push);
    expect(res.statusCode).toBe(status);
    expect(res.json().error).toBeTypeOf('string');
    expect(await jobs()).toHaveLength(0);
  });

  it('refuses a body over the limit with 413', async () => {
    const push = buildPush({ account: mp, message: sampleMessage('text', { content: 'x'.repeat(300 * 1024) }) });
    expect((await post(app, mp.appId, push)).statusCode).toBe(413);
  });

  it('refuses an unknown account with 404', async () => {
    const res = await post(app, 'wxnobody', buildPush({ account: mp, message: sampleMessage('text') }));
    expect(res.statusCode).toBe(404);
    expect(res.json().error).toBe('unknown_account');
  });

  it('refuses plaintext for a safe-only account with 403, and takes its encrypted pushes', async () => {
    expect((await post(app, oa.appId, buildPush({ account: oa, message: sampleMessage('text') }))).statusCode).toBe(
      403,
    );
    expect(
      (await post(app, oa.appId, buildPush({ account: oa, message: sampleMessage('text'), mode: 'safe' }))).statusCode,
    ).toBe(200);
    expect(await jobs()).toHaveLength(1);
  });

  it('refuses a timestamp outside the window (a replayed signature)', async () => {
    const old = String(Math.floor(Date.now() / 1000) - 7200);
    const res = await post(app, mp.appId, buildPush({ account: mp, message: sampleMessage('text'), timestamp: old }));
    expect(res.statusCode).toBe(401);
    expect(res.json().message).toContain('timestamp');
  });

  it('refuses duplicated query parameters and unknown encrypt_type', async () => {
    const push = buildPush({ account: mp, message: sampleMessage('text') });
    const res = await app.inject({
      method: 'POST',
      url: `/wechat/${mp.appId}?${new URLSearchParams(push.query)}&nonce=2`,
      payload: push.body,
    });
    expect(res.statusCode).toBe(400);
    expect(await jobs()).toEqual([]);
    const weird = { ...push, query: { ...push.query, encrypt_type: 'rot13' } };
    expect((await post(app, mp.appId, weird)).statusCode).toBe(400);
    expect((await app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
  });
});

describe('de-duplication', () => {
  it('stores a push delivered four times once, and answers success every time', async () => {
    const push = buildPush({ account: mp, message: sampleMessage('text'), mode: 'safe', format: 'xml' });
    for (let i = 0; i < 4; i++) expect((await post(app, mp.appId, push)).body).toBe('success');
    expect(await jobs()).toHaveLength(1);
  });

  it('stores concurrent deliveries of the same message once, even with different nonces', async () => {
    const message = sampleMessage('text');
    const pushes = Array.from({ length: 20 }, () => buildPush({ account: mp, message, mode: 'safe', format: 'json' }));
    const answers = await Promise.all(pushes.map((p) => post(app, mp.appId, p)));
    expect(answers.map((a) => a.body)).toEqual(Array(20).fill('success'));
    expect(await jobs()).toHaveLength(1);
  });

  it('keeps two different events of one user in the same second apart', async () => {
    const createTime = Math.floor(Date.now() / 1000);
    for (const type of ['LOCATION', 'VIEW'] as const) {
      await post(app, mp.appId, buildPush({ account: mp, message: sampleMessage(type, { createTime }) }));
    }
    expect(await jobs()).toHaveLength(2);
  });
});

describe('transfer to customer service', () => {
  it('answers a plaintext XML push with transfer_customer_service and marks the job', async () => {
    const message = sampleMessage('text', { content: '转人工', fromUser: 'o_user', toUser: 'gh_mp' });
    const res = await post(app, mp.appId, buildPush({ account: mp, message }));
    expect(parseFields(res.body)).toMatchObject({
      ToUserName: 'o_user',
      FromUserName: 'gh_mp',
      MsgType: 'transfer_customer_service',
      TransInfo: { KfAccount: 'agent1@test' },
    });
    expect((await jobs())[0]?.transferred).toBe(true);
  });

  it('encrypts the transfer answer of a safe-mode JSON push', async () => {
    const push = buildPush({
      account: mp,
      message: sampleMessage('text', { content: '人工', fromUser: 'o_u' }),
      mode: 'safe',
      format: 'json',
    });
    const res = await post(app, mp.appId, push);
    const envelope = res.json();
    verifyMsgSignature(
      mp.token,
      { msg_signature: envelope.MsgSignature, timestamp: String(envelope.TimeStamp), nonce: envelope.Nonce },
      envelope.Encrypt,
    );
    expect(envelope.Nonce).toBe(push.query.nonce);
    const inner = JSON.parse(decryptMessage(decodeAesKey(AES), envelope.Encrypt, mp.appId));
    expect(inner).toMatchObject({ ToUserName: 'o_u', MsgType: 'transfer_customer_service' });
  });

  it('never transfers an event', async () => {
    const res = await post(app, mp.appId, buildPush({ account: mp, message: sampleMessage('user_enter_tempsession') }));
    expect(res.body).toBe('success');
  });
});

describe('logs', () => {
  it('writes one line per push with the outcome, and never a secret', async () => {
    logs.lines.length = 0;
    const push = buildPush({ account: mp, message: sampleMessage('text'), mode: 'safe', format: 'json' });
    await post(app, mp.appId, push);
    await post(app, mp.appId, { ...push, query: { ...push.query, msg_signature: 'f'.repeat(40) } });
    await app.inject({
      method: 'GET',
      url: `/wechat/${mp.appId}?signature=${push.query.signature}&timestamp=${push.query.timestamp}&nonce=${push.query.nonce}&echostr=1`,
    });
    const pushLines = logs.records.filter((r) => r.msg === 'push');
    expect(pushLines.map((r) => [r.outcome, r.status])).toEqual([
      ['stored', 200],
      ['rejected', 401],
    ]);
    expect(pushLines[0]).toMatchObject({ appId: mp.appId, mode: 'safe', format: 'json', msgType: 'text' });
    expect(pushLines[0]?.msgKey).toMatch(new RegExp(`^${mp.appId}-m\\d{19}$`));
    for (const secret of [
      mp.appSecret,
      mp.token,
      AES,
      push.query.signature,
      push.query.msg_signature,
      JSON.parse(push.body).Encrypt,
    ]) {
      expect(logs.text).not.toContain(secret);
    }
  });
});

describe('metrics', () => {
  it('counts the requests refused before a push is read, by status (404, 413, 503 …), apart from the pushes', async () => {
    const registry = new Registry();
    const counted = buildApp({
      config: { accounts: [mp, oa], ingress: { timestampToleranceSeconds: 1200 } },
      queue,
      redis,
      logger: createLogger('ingress-test', { destination: logs }),
      registry,
    });
    // A 503 raised before the route, as load shedding (@fastify/under-pressure) raises it when the event loop
    // lags: the app's error handler answers it, like every refusal outside the push route.
    counted.get('/test/overloaded', async () => {
      throw Object.assign(new Error('Service Unavailable'), { statusCode: 503, code: 'FST_UNDER_PRESSURE' });
    });
    try {
      const big = buildPush({ account: mp, message: sampleMessage('text', { content: 'x'.repeat(300 * 1024) }) });
      expect((await post(counted, mp.appId, big)).statusCode).toBe(413);
      const unknown = buildPush({ account: mp, message: sampleMessage('text') });
      expect((await post(counted, 'wxnobody', unknown)).statusCode).toBe(404);
      expect((await post(counted, 'wxnobody', unknown)).statusCode).toBe(404);
      expect((await counted.inject({ method: 'GET', url: '/test/overloaded' })).statusCode).toBe(503);
      expect(
        (await post(counted, mp.appId, buildPush({ account: mp, message: sampleMessage('text') }))).statusCode,
      ).toBe(200);

      const refused = await registry.getSingleMetric('wxkf_requests_refused_total')?.get();
      const byStatus = Object.fromEntries((refused?.values ?? []).map((v) => [v.labels.status, v.value]));
      expect(byStatus).toEqual({ '404': 2, '413': 1, '503': 1 });
      const pushes = await registry.getSingleMetric('wxkf_pushes_total')?.get();
      expect(pushes?.values.map((v) => [v.labels.result, v.value])).toEqual([['stored', 1]]);
    } finally {
      await counted.close();
    }
  });
});

describe('slow clients', () => {
  it('answers a request whose body stalls with 408 within seconds, not after a minute', async () => {
    const slow = buildApp({
      config: { accounts: [mp], ingress: { timestampToleranceSeconds: 1200 } },
      queue,
      redis,
      logger: createLogger('ingress-test', { destination: logs }),
    });
    await slow.listen({ host: '127.0.0.1', port: 0 });
    try {
      const { port } = slow.server.address() as { port: number };
      const started = Date.now();
      const answer = await new Promise<string>((resolve) => {
        const socket = connect(port, '127.0.0.1', () => {
          socket.write(`POST /wechat/${mp.appId} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n<xml>`);
        });
        let data = '';
        socket.on('data', (chunk) => {
          data += chunk.toString();
        });
        socket.on('close', () => resolve(data));
      });
      expect(answer).toMatch(/^HTTP\/1\.1 408/);
      expect(Date.now() - started).toBeLessThan(10_000); // was 30 to 60 s: Node checked timeouts every 30 s
    } finally {
      await slow.close();
    }
  });
});
