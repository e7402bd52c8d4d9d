import { writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Handoffs } from '@wx-kf/shared/handoff';
import { INBOUND_QUEUE, openQueue } from '@wx-kf/shared/queue';
import { createRedis, Keyspace } from '@wx-kf/shared/redis';
import { decodeAesKey, decryptMessage, parseFields } from '@wx-kf/shared/wechat';
import { freePort, isolatedRedisUrl, ServiceProcess } from '@wx-kf/testkit';
import { buildPush, deliverPush, type SampleType, Simulator, sampleMessage } from '@wx-kf/wechat-sim';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const keyspace = Keyspace.SINGLE;

// Invariant 12, across real ingress and worker processes: while a user is handed to a human, their messages
// are transferred and the bot sends them nothing; WeChat's kf events open, move and close the handoff.
const AES = 'HandoffProcessTestEncodingAESKey00000000000';
const mp = { appId: 'wxhandoffproc0001', appSecret: 'handoff-mp-secret', token: 'handoffMpTok', aesKey: AES };
const oa = { appId: 'wxhandoffproc0002', appSecret: 'handoff-oa-secret', token: 'handoffOaTok', aesKey: AES };
type Account = typeof mp;

const sim = new Simulator({
  accounts: [
    { appId: mp.appId, appSecret: mp.appSecret, type: 'miniprogram' },
    { appId: oa.appId, appSecret: oa.appSecret, type: 'officialaccount' },
  ],
});
const running: ServiceProcess[] = [];
let url: string;
let redis: Redis;
let handoffs: Handoffs;

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wx-kf-handoff-proc-'));
  const rules = join(dir, 'rules.yaml');
  writeFileSync(
    rules,
    'rules:\n  - when: { msgType: text, contains: 人工 }\n    transfer: true\nfallback:\n  - { msgtype: text, text: { content: "收到：{{Content}}" } }\n',
  );
  const accounts = join(dir, 'accounts.json');
  writeFileSync(
    accounts,
    JSON.stringify({
      accounts: [
        { ...mp, type: 'miniprogram' },
        { ...oa, type: 'officialaccount' },
      ],
    }),
  );
  const redisUrl = await isolatedRedisUrl();
  const port = await freePort();
  await sim.listen(await freePort());
  const env = {
    REDIS_URL: redisUrl,
    PORT: String(port),
    HOST: '127.0.0.1',
    WECHAT_API_BASE: sim.url,
    WECHAT_ACCOUNTS_FILE: accounts,
    REPLY_RULES_FILE: rules,
  };
  const ingress = ServiceProcess.start('ingress', env);
  const worker = ServiceProcess.start('worker', env);
  running.push(ingress, worker);
  await Promise.all([ingress.waitFor('ingress listening'), worker.waitFor('worker started')]);
  url = `http://127.0.0.1:${port}/wechat`;
  redis = createRedis(redisUrl, 'client');
  handoffs = new Handoffs({ redis, idleMs: 30 * 60_000 });
});
afterAll(async () => {
  await Promise.all(running.map((p) => p.stop('SIGKILL')));
  await sim.close();
  redis?.disconnect();
});

/** Pushes one message in safe mode; resolves the answer (decrypted) and the stored job's id. */
async function send(account: Account, type: SampleType, user: string, extra: Parameters<typeof sampleMessage>[1] = {}) {
  const message = sampleMessage(type, { fromUser: user, ...extra });
  const push = buildPush({ account, message, mode: 'safe', format: 'xml' });
  const [delivery] = await deliverPush(`${url}/${account.appId}`, push);
  expect(delivery?.status).toBe(200);
  const body = delivery?.body ?? '';
  const answer =
    body === 'success'
      ? 'success'
      : parseFields(decryptMessage(decodeAesKey(AES), String(parseFields(body).Encrypt), account.appId));
  return { answer, encrypted: body.includes('<Encrypt>') };
}

/** Waits until every stored push has been processed by the worker; resolves their results. */
async function processed(): Promise<unknown[]> {
  const queue = openQueue(INBOUND_QUEUE, redis);
  try {
    for (let i = 0; i < 500; i++) {
      const counts = await queue.getJobCounts('waiting', 'active', 'delayed');
      if (counts.waiting === 0 && counts.active === 0 && counts.delayed === 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    return (await queue.getJobs(['completed'])).map((j) => j.returnvalue);
  } finally {
    await queue.close();
  }
}
const botSent = (user: string) =>
  sim.state.messagesFor(undefined, user).map((m) => (m.body.text as { content: string }).content);
async function until(check: () => boolean | Promise<boolean>) {
  for (let i = 0; i < 500 && !(await check()); i++) await new Promise((r) => setTimeout(r, 20));
  expect(await check()).toBe(true);
}

describe('handoff across ingress and worker processes', () => {
  it('a transfer sticks: later messages are transferred and the bot is silent until kf_close_session', async () => {
    const user = 'o_proc_user_1';
    expect((await send(mp, 'text', user, { content: '转人工' })).answer).toMatchObject({
      MsgType: 'transfer_customer_service',
    });
    for (const content of ['hello', 'anyone?', 'still here']) {
      const { answer, encrypted } = await send(mp, 'text', user, { content });
      expect(encrypted).toBe(true);
      expect(answer, content).toMatchObject({ MsgType: 'transfer_customer_service', ToUserName: user });
    }
    // An event in the meantime is never transferred.
    expect((await send(mp, 'user_enter_tempsession', user)).answer).toBe('success');
    await processed();
    expect(botSent(user)).toEqual([]);

    expect((await send(mp, 'kf_close_session', user, { kfAccount: 'agent1@mp' })).answer).toBe('success');
    await until(async () => !(await handoffs.isOpen(mp.appId, user)));
    expect((await send(mp, 'text', user, { content: 'back' })).answer).toBe('success');
    await until(() => botSent(user).length === 1);
    expect(botSent(user)).toEqual(['收到：back']);
  });

  it('kf_create_session opens it with the agent and kf_switch_session moves it; the bot stays silent', async () => {
    const user = 'o_proc_user_2';
    await send(oa, 'kf_create_session', user, { kfAccount: 'alice@oa' });
    await until(async () => (await handoffs.get(oa.appId, user))?.agent === 'alice@oa');
    const first = await send(oa, 'text', user, { content: 'hi' });
    expect(first.encrypted).toBe(true);
    expect(first.answer).toMatchObject({ MsgType: 'transfer_customer_service', TransInfo: { KfAccount: 'alice@oa' } });

    await send(oa, 'kf_switch_session', user, { kfAccount: 'alice@oa', toKfAccount: 'bob@oa' });
    await until(async () => (await handoffs.get(oa.appId, user))?.agent === 'bob@oa');
    const second = await send(oa, 'text', user, { content: 'hello?' });
    expect(second.answer).toMatchObject({ TransInfo: { KfAccount: 'bob@oa' } });
    await processed();
    expect(botSent(user)).toEqual([]);
  });

  it('closes after the idle timeout, then the bot answers again', async () => {
    const user = 'o_proc_user_3';
    expect((await send(mp, 'text', user, { content: '人工' })).answer).toMatchObject({
      MsgType: 'transfer_customer_service',
    });
    expect((await send(mp, 'text', user, { content: 'wait' })).answer).not.toBe('success');
    await processed();
    // Time passes on the idle timer, which is the key's expiry in Redis: 30 minutes become 1 ms.
    const key = keyspace.handoff(mp.appId, user);
    expect(await redis.pttl(key)).toBeGreaterThan(29 * 60_000);
    await redis.pexpire(key, 1);
    await until(async () => (await redis.exists(key)) === 0);
    expect((await send(mp, 'text', user, { content: 'hello bot' })).answer).toBe('success');
    await until(() => botSent(user).length === 1);
    expect(botSent(user)).toEqual(['收到：hello bot']);
  });

  it('logs each handoff opened, moved and closed with its reason', async () => {
    const logs = () => running.flatMap((p) => p.output).join('\n');
    const said = [
      /"reason":"rule".*"handoff opened"/,
      /"reason":"kf_create_session".*"handoff opened"/,
      /"reason":"kf_close_session".*"handoff closed"/,
      /"reason":"kf_switch_session".*"handoff moved"/,
    ];
    // A process writes its info lines within its flush interval (100 ms), not at once.
    await until(() => said.every((line) => line.test(logs())));
    for (const line of said) expect(logs()).toMatch(line);
  });
});
