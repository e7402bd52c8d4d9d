import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AccountConfig } from '@wx-kf/shared/config';
import { Handoffs } from '@wx-kf/shared/handoff';
import { createLogger } from '@wx-kf/shared/log';
import { INBOUND_QUEUE, type InboundJobData, openQueue } from '@wx-kf/shared/queue';
import { createRedis, Keyspace } from '@wx-kf/shared/redis';
import { decodeAesKey, decryptMessage, parseFields } from '@wx-kf/shared/wechat';
import { isolatedRedisUrl, LogCapture } from '@wx-kf/testkit';
import { buildPush, type PushMode, sampleMessage } from '@wx-kf/wechat-sim';
import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from './app.js';

const keyspace = Keyspace.SINGLE;

const AES = 'HandoffIngressTestEncodingAESKey00000000000';
const account = (appId: string, type: AccountConfig['type'], extra: Partial<AccountConfig> = {}): AccountConfig => ({
  appId,
  appSecret: `${appId}-secret`,
  token: 'handoffToken1',
  aesKey: AES,
  type,
  security: 'any',
  ...extra,
});
const dir = mkdtempSync(join(tmpdir(), 'wx-kf-handoff-'));
const transferRules = join(dir, 'transfer.yaml');
writeFileSync(transferRules, 'rules:\n  - when: { msgType: text, contains: 人工 }\n    transfer: true\n');
const replyRules = join(dir, 'reply.yaml');
writeFileSync(replyRules, 'rules: []\nfallback:\n  - { msgtype: text, text: { content: "收到" } }\n');
/** A Mini Program whose rules transfer (handoff: auto → on), an Official Account, and one without handoff. */
const mp = account('wxhandoffmp000001', 'miniprogram', { replyRules: transferRules });
const oa = account('wxhandoffoa000002', 'officialaccount', { replyRules: replyRules, security: 'safe' });
const plainMp = account('wxhandoffnone0003', 'miniprogram', { replyRules: replyRules });

let redisUrl: string;
let redis: Redis;
let queue: Queue<InboundJobData>;
let app: FastifyInstance;
let handoffs: Handoffs;
const registry = new Registry();
const logs = new LogCapture();

const push = (
  a: AccountConfig,
  type: 'text' | 'user_enter_tempsession',
  from: string,
  content = 'hello',
  mode?: PushMode,
) =>
  buildPush({
    account: a,
    message: sampleMessage(type, { fromUser: from, content }),
    mode: mode ?? (a.security === 'safe' ? 'safe' : 'plain'),
    format: 'xml',
  });
const post = (a: AccountConfig, p: ReturnType<typeof push>) =>
  app.inject({
    method: 'POST',
    url: `/wechat/${a.appId}?${new URLSearchParams(p.query)}`,
    payload: p.body,
    headers: { 'content-type': p.contentType },
  });
/** The answer's MsgType (decrypted when encrypted), or `success`. */
const answered = (a: AccountConfig, body: string): Record<string, unknown> | 'success' => {
  if (body === 'success') return 'success';
  const fields = parseFields(body);
  if (typeof fields.Encrypt !== 'string') return fields;
  return parseFields(decryptMessage(decodeAesKey(AES), fields.Encrypt, a.appId));
};

beforeAll(async () => {
  redisUrl = await isolatedRedisUrl();
  redis = createRedis(redisUrl, 'producer');
  queue = openQueue(INBOUND_QUEUE, redis);
  app = buildApp({
    config: { accounts: [mp, oa, plainMp], ingress: { timestampToleranceSeconds: 3600 }, handoff: { idleMs: 60_000 } },
    queue,
    redis,
    logger: createLogger('ingress-handoff-test', { destination: logs }),
    registry,
  });
  handoffs = new Handoffs({ redis, idleMs: 60_000 });
});
beforeEach(async () => {
  await queue.obliterate({ force: true });
  await redis.flushdb();
});
afterAll(async () => {
  await app.close();
  await queue.close();
  redis.disconnect();
});

describe('handoff in the ingress', () => {
  it('after a transfer rule fires, every later message of that user is transferred until the handoff closes', async () => {
    const first = await post(mp, push(mp, 'text', 'o_h1', '我要人工'));
    expect(answered(mp, first.body)).toMatchObject({ MsgType: 'transfer_customer_service' });
    expect(await handoffs.get(mp.appId, 'o_h1')).toMatchObject({ open: true, reason: 'rule' });
    for (const text of ['hello', 'are you there', '谢谢']) {
      const res = await post(mp, push(mp, 'text', 'o_h1', text));
      expect(answered(mp, res.body), text).toMatchObject({ MsgType: 'transfer_customer_service' });
    }
    // Another user and events are not transferred.
    expect((await post(mp, push(mp, 'text', 'o_h2', 'hello'))).body).toBe('success');
    expect((await post(mp, push(mp, 'user_enter_tempsession', 'o_h1'))).body).toBe('success');
    // Each message renewed the idle timeout.
    expect(await redis.pttl(keyspace.handoff(mp.appId, 'o_h1'))).toBeGreaterThan(55_000);

    await handoffs.close(mp.appId, 'o_h1', { reason: 'operator', force: true });
    expect((await post(mp, push(mp, 'text', 'o_h1', 'hello again'))).body).toBe('success');
    expect(await registry.getSingleMetricAsString('wxkf_handoffs_total')).toContain(
      `wxkf_handoffs_total{app_id="${mp.appId}",change="opened",reason="rule"} 1`,
    );
  });

  it("answers with the agent's KfAccount, encrypted for an encrypted push", async () => {
    await handoffs.open(oa.appId, 'o_h3', { reason: 'kf_create_session', agent: 'agent7@oa', at: Date.now() });
    for (const mode of ['safe', 'compat'] as const) {
      const res = await post(oa, push(oa, 'text', 'o_h3', 'hello', mode));
      expect(res.body).toContain('<Encrypt>');
      expect(answered(oa, res.body)).toMatchObject({
        MsgType: 'transfer_customer_service',
        ToUserName: 'o_h3',
        TransInfo: { KfAccount: 'agent7@oa' },
      });
    }
    await handoffs.open(oa.appId, 'o_h3', { reason: 'kf_switch_session', agent: 'agent8@oa', at: Date.now() + 1000 });
    const moved = await post(oa, push(oa, 'text', 'o_h3', 'hello', 'safe'));
    expect(answered(oa, moved.body)).toMatchObject({ TransInfo: { KfAccount: 'agent8@oa' } });
  });

  it('the handoff read costs no command of its own: the store script renews it, only for accounts with handoff', async () => {
    const seen: { db: number; command: string; args: string[]; source: string }[] = [];
    const db = Number(new URL(redisUrl).pathname.slice(1));
    const monitor = await new Redis(redisUrl).monitor();
    monitor.on('monitor', (_time: string, args: string[], source: string, database: string) => {
      if (Number(database) !== db) return;
      seen.push({ db, command: String(args[0]).toLowerCase(), args: args.slice(1), source });
    });
    const count = async (a: AccountConfig, n: number) => {
      seen.length = 0;
      for (let i = 0; i < n; i++) expect((await post(a, push(a, 'text', `o_cost${i}`))).statusCode).toBe(200);
      await redis.ping(); // MONITOR lines arrive in order: once PING is seen, every earlier command has been
      for (let i = 0; i < 100 && !seen.some((c) => c.command === 'ping'); i++)
        await new Promise((r) => setTimeout(r, 10));
      const sent = seen.filter((c) => c.source !== 'lua' && c.command !== 'ping' && c.command !== 'monitor');
      return {
        handoff: seen.filter((c) => c.source === 'lua' && c.args[0]?.includes(':handoff')).map((c) => c.command),
        sent: sent.map((c) => c.command),
      };
    };
    try {
      const none = await count(plainMp, 5);
      expect(none.sent.length).toBeGreaterThan(0); // the monitor saw the pushes being stored
      expect(none.handoff).toEqual([]);
      const withHandoff = await count(mp, 5);
      expect(withHandoff.handoff).toEqual(['getex', 'getex', 'getex', 'getex', 'getex']);
      expect(withHandoff.sent).toEqual(none.sent);
    } finally {
      monitor.disconnect();
    }
  });
});
