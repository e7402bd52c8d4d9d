import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@wx-kf/shared/config';
import { Handoffs } from '@wx-kf/shared/handoff';
import { createLogger } from '@wx-kf/shared/log';
import {
  INBOUND_QUEUE,
  type InboundJobData,
  inboundJob,
  OUTBOUND_JOB_OPTIONS,
  OUTBOUND_QUEUE,
  type OutboundJobData,
  openQueue,
} from '@wx-kf/shared/queue';
import { createRedis } from '@wx-kf/shared/redis';
import type { FieldMap, InboundMessage } from '@wx-kf/shared/wechat';
import { isolatedRedisUrl, LogCapture } from '@wx-kf/testkit';
import { Simulator, sampleMessage } from '@wx-kf/wechat-sim';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningWorker, startWorker } from './worker.js';

const MP = 'wxworkerhandoff01';
const dir = mkdtempSync(join(tmpdir(), 'wx-kf-worker-handoff-'));
// A handler that hands the user to a human when asked, and otherwise echoes.
writeFileSync(
  join(dir, 'handler.mjs'),
  `export default async function (message, ctx) {
  if (message.Content === 'agent please') {
    await ctx.handoff.open(message.FromUserName, 'kf1@acc');
    return ctx.reply.text('an agent will answer you');
  }
  return ctx.reply.text('echo: ' + (message.Content ?? message.Event));
}
`,
);
const sim = new Simulator({ accounts: [{ appId: MP, appSecret: 'handoff-secret', type: 'miniprogram' }] });
const logs = new LogCapture();
let redis: Redis;
let inbound: Queue<InboundJobData>;
let outbound: Queue<OutboundJobData>;
let worker: RunningWorker;
let handoffs: Handoffs;

const sent = (touser: string) =>
  sim.state.messagesFor(MP, touser).map((m) => (m.body.text as { content: string }).content);
async function until<T>(check: () => T | Promise<T>): Promise<NonNullable<T>> {
  for (let i = 0; i < 500; i++) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('condition not met in time');
}
async function push(message: FieldMap): Promise<unknown> {
  const job = inboundJob(MP, message as InboundMessage, { mode: 'safe', format: 'json' });
  await inbound.add(job.name, job.data, job.opts);
  return until(async () => (await inbound.getJob(job.opts.jobId))?.returnvalue);
}
async function outboundJob(data: Partial<OutboundJobData>) {
  const job = await outbound.add(
    'send',
    {
      appId: MP,
      msgKey: 'k',
      replies: [{ msgtype: 'text', text: { content: 'queued' } }],
      sent: 0,
      source: 'rules',
      ...data,
    } as OutboundJobData,
    { ...OUTBOUND_JOB_OPTIONS, attempts: 1 },
  );
  return until(async () => {
    const j = await outbound.getJob(job.id as string);
    return j?.finishedOn ? j : undefined;
  });
}

beforeAll(async () => {
  const redisUrl = await isolatedRedisUrl();
  await sim.listen();
  const config = loadConfig({
    REDIS_URL: redisUrl,
    WECHAT_API_BASE: sim.url,
    WECHAT_APP_ID: MP,
    WECHAT_APP_SECRET: 'handoff-secret',
    WECHAT_TOKEN: 'handoffTok',
    WECHAT_HANDLER: join(dir, 'handler.mjs'),
    HANDOFF_IDLE_TIMEOUT_SECONDS: '1',
  });
  redis = createRedis(redisUrl, 'client');
  inbound = openQueue(INBOUND_QUEUE, redis);
  outbound = openQueue(OUTBOUND_QUEUE, redis);
  handoffs = new Handoffs({ redis, idleMs: 60_000 });
  worker = await startWorker(config, createLogger('worker-handoff-test', { destination: logs }));
});
afterAll(async () => {
  await worker.close();
  await inbound.close();
  await outbound.close();
  redis.disconnect();
  await sim.close();
});

describe('handoff in the worker', () => {
  it('a handler hands the user over: its reply for that message goes, then the bot is silent', async () => {
    const user = 'o_wh_1';
    expect(await push(sampleMessage('text', { fromUser: user, content: 'agent please' }))).toMatchObject({
      action: 'replied',
    });
    expect(await push(sampleMessage('text', { fromUser: user, content: 'hello?' }))).toEqual({ action: 'handoff' });
    expect(sent(user)).toEqual(['an agent will answer you']);
    expect(await handoffs.get(MP, user)).toMatchObject({ open: true, agent: 'kf1@acc', reason: 'handler' });
  });

  it('kf session events change the handoff and are never answered by the bot', async () => {
    const user = 'o_wh_2';
    const at = Math.floor(Date.now() / 1000);
    const create = sampleMessage('kf_create_session', { fromUser: user, kfAccount: 'kf2@acc', createTime: at });
    expect(await push(create)).toEqual({ action: 'handoff' });
    expect(await handoffs.get(MP, user)).toMatchObject({ open: true, agent: 'kf2@acc' });
    const close = sampleMessage('kf_close_session', { fromUser: user, kfAccount: 'kf2@acc', createTime: at + 1 });
    expect(await push(close)).toEqual({ action: 'handoff' });
    expect(await handoffs.isOpen(MP, user)).toBe(false);
    expect(await push(sampleMessage('text', { fromUser: user, content: 'hi' }))).toMatchObject({ action: 'replied' });
    expect(sent(user)).toEqual(['echo: hi']);
  });

  it('drops a bot reply still owed, fails a send-API message, and sends one marked ignoreHandoff', async () => {
    const user = 'o_wh_3';
    await handoffs.open(MP, user, { reason: 'operator', force: true });
    const retry = await outboundJob({ touser: user, source: 'rules' });
    expect(retry.returnvalue).toEqual({ sent: 0, handoff: true });
    const api = await outboundJob({ touser: user, source: 'api' });
    expect(api.failedReason).toContain('handoff');
    expect(sent(user)).toEqual([]);
    const forced = await outboundJob({ touser: user, source: 'api', ignoreHandoff: true, ignoreWindow: true });
    expect(forced.returnvalue).toEqual({ sent: 1 });
    expect(sent(user)).toEqual(['queued']);
  });

  it('notices a handoff that closed by the idle timeout, logs and counts it once', async () => {
    const user = 'o_wh_4';
    await new Handoffs({ redis, idleMs: 1000 }).open(MP, user, { reason: 'operator', force: true });
    await until(() => /"openid":"o_wh_4".*"reason":"idle".*"handoff closed"/.test(logs.text));
    // Counted once, though the worker's two sweeps and this test's Handoffs could all have seen it.
    expect(logs.text.match(/"openid":"o_wh_4"[^\n]*"handoff closed"/g)).toHaveLength(1);
    expect(await worker.registry.getSingleMetricAsString('wxkf_handoffs_total')).toMatch(
      new RegExp(`wxkf_handoffs_total\\{app_id="${MP}",change="closed",reason="idle"\\} [1-9]`),
    );
    expect(await push(sampleMessage('text', { fromUser: user, content: 'back' }))).toMatchObject({ action: 'replied' });
  });
});
