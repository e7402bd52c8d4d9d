import type { AccountConfig } from '@wx-kf/shared/config';
import { createLogger } from '@wx-kf/shared/log';
import { INBOUND_QUEUE, type InboundJobData, openQueue } from '@wx-kf/shared/queue';
import { createRedis } from '@wx-kf/shared/redis';
import { type FieldMap, type FieldValue, formatFields, parseFields } from '@wx-kf/shared/wechat';
import { isolatedRedisUrl, LogCapture } from '@wx-kf/testkit';
import { buildPush, type CatalogueEntry, catalogueXml, PUSH_CATALOGUE, type PushMode } from '@wx-kf/wechat-sim';
import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from './app.js';

// Every documented message and event type, as WeChat's pages show it (indented XML), pushed through the ingress
// twice: a re-delivery is one job, and two different events from one user in the same second are two.

const account: AccountConfig = {
  appId: 'wxcatalogue000001',
  appSecret: 'catalogue-secret',
  token: 'catToken123',
  aesKey: 'jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C',
  type: 'officialaccount',
  security: 'any',
};

let redis: Redis;
let queue: Queue<InboundJobData>;
let app: FastifyInstance;
const logs = new LogCapture();

const stored = async () => (await queue.getJobs(['waiting'])).map((j) => j.data.message as FieldMap);
const outcomes = () => logs.records.filter((r) => r.msg === 'push').map((r) => r.outcome);

/** Sends one push as WeChat would: each delivery signed (and encrypted) anew. */
async function deliver(plaintext: string, mode: PushMode, format: 'xml' | 'json' = 'xml') {
  const message = parseFields(plaintext);
  const body = format === 'xml' ? plaintext : formatFields(message, 'json');
  const p = buildPush({ account, message, plaintext: body, mode, format });
  return app.inject({
    method: 'POST',
    url: `/wechat/${account.appId}?${new URLSearchParams(p.query)}`,
    payload: p.body,
  });
}

/** Every key at every level, to find whitespace text nodes. */
function keysOf(value: FieldValue, into: string[] = []): string[] {
  if (typeof value === 'string') return into;
  if (Array.isArray(value)) {
    for (const v of value) keysOf(v, into);
    return into;
  }
  for (const [k, v] of Object.entries(value)) {
    into.push(k);
    keysOf(v, into);
  }
  return into;
}

function setPath(fields: FieldMap, path: string, value: string): FieldMap {
  const copy = structuredClone(fields);
  const parts = path.split('.');
  let node: FieldValue = copy;
  for (const part of parts.slice(0, -1)) node = (node as Record<string, FieldValue>)[part] as FieldValue;
  (node as Record<string, FieldValue>)[parts.at(-1) as string] = value;
  return copy;
}

let n = 0;
const values = () => ({ from: `o_cat_${n++}`, time: Math.floor(Date.now() / 1000), id: `60547685900647${1e5 + n}` });

beforeAll(async () => {
  redis = createRedis(await isolatedRedisUrl(), 'producer');
  queue = openQueue(INBOUND_QUEUE, redis);
  app = buildApp({
    config: { accounts: [account], ingress: { timestampToleranceSeconds: 300 } },
    queue,
    redis,
    logger: createLogger('catalogue-test', { destination: logs }),
  });
});
beforeEach(async () => {
  await queue.obliterate({ force: true });
  logs.lines.length = 0;
});
afterAll(async () => {
  await app.close();
  await queue.close();
  redis.disconnect();
});

describe('every documented push type', () => {
  it.each(PUSH_CATALOGUE.map((e) => [e.name, e] as [string, CatalogueEntry]))(
    '%s: delivered twice in each mode, stored once, in one shape',
    async (_name, entry) => {
      const shapes: FieldMap[] = [];
      for (const mode of ['plain', 'compat', 'safe'] as const) {
        await queue.obliterate({ force: true });
        logs.lines.length = 0;
        const xml = catalogueXml(entry, values());
        for (let i = 0; i < 2; i++) expect((await deliver(xml, mode)).statusCode).toBe(200);
        expect(outcomes()).toEqual(['stored', 'duplicate']);
        const [message, ...more] = await stored();
        expect(more).toHaveLength(0);
        expect(keysOf(message as FieldMap)).not.toContain('#text');
        shapes.push(message as FieldMap);
      }
      // The same push as compact JSON is stored in the same shape as the indented XML.
      await queue.obliterate({ force: true });
      const v = values();
      await deliver(catalogueXml(entry, v), 'safe', 'json');
      const xmlShape = parseFields(catalogueXml(entry, v));
      const [fromJson] = await stored();
      expect(fromJson).toEqual(xmlShape);
      expect(Object.keys(shapes[0] as FieldMap).sort()).toEqual(Object.keys(xmlShape).sort());
    },
  );

  const distinct = PUSH_CATALOGUE.filter((e) => e.differsBy);
  it.each(distinct.map((e) => [e.name, e] as [string, CatalogueEntry]))(
    '%s: two events from one user in one second that differ in one field are two jobs',
    async (_name, entry) => {
      const differs = entry.differsBy as NonNullable<CatalogueEntry['differsBy']>;
      const xml = catalogueXml(entry, values());
      const fields = parseFields(xml);
      const other = formatFields(setPath(fields, differs.field, differs.to), 'xml');
      expect(other).not.toEqual(formatFields(fields, 'xml'));
      for (const body of [xml, other, xml, other]) expect((await deliver(body, 'safe')).statusCode).toBe(200);
      expect(outcomes()).toEqual(['stored', 'stored', 'duplicate', 'duplicate']);
      expect(await stored()).toHaveLength(2);
    },
  );

  it('events with their own id (template and mass-send results, publish jobs) are keyed on it', async () => {
    for (const name of ['event:TEMPLATESENDJOBFINISH', 'event:MASSSENDJOBFINISH', 'event:PUBLISHJOBFINISH']) {
      const entry = PUSH_CATALOGUE.find((e) => e.name === name) as CatalogueEntry;
      // The same user, second and content; only the job's id differs.
      const v = values();
      expect((await deliver(catalogueXml(entry, v), 'safe')).statusCode).toBe(200);
      expect((await deliver(catalogueXml(entry, { ...v, id: values().id }), 'safe')).statusCode).toBe(200);
    }
    expect(await stored()).toHaveLength(6);
  });

  it('list elements are arrays even with one entry', async () => {
    const entry = PUSH_CATALOGUE.find((e) => e.name === 'event:pic_weixin') as CatalogueEntry;
    await deliver(catalogueXml(entry, values()), 'safe');
    const [message] = await stored();
    expect(message?.SendPicsInfo).toEqual({
      Count: '1',
      PicList: { item: [{ PicMd5Sum: '1b5f7c23b5bf75682a53e7b6d163e185' }] },
    });
  });
});
