// The send API's Idempotency-Key on a sharded layout (REDIS_SHARDS=4, as on a cluster): concurrent retries with
// one key, through the real admin app, a real worker and a simulator counting what WeChat accepted. With more
// than one shard two bodies for two users land in two queues, so BullMQ's job-id de-duplication no longer
// hides a check-then-add race: the key itself must be claimed first.
import { buildAdminApp, Queues } from '@wx-kf/admin';
import { type Config, loadConfig } from '@wx-kf/shared/config';
import { Conversations, WINDOW_GRANTS } from '@wx-kf/shared/conversation';
import { createLogger } from '@wx-kf/shared/log';
import { OUTBOUND_JOB_OPTIONS } from '@wx-kf/shared/queue';
import { createRedis, keyspaceOf, type RedisClient } from '@wx-kf/shared/redis';
import { isolatedRedisUrl } from '@wx-kf/testkit';
import { Simulator } from '@wx-kf/wechat-sim';
import { type RunningWorker, startWorker } from '@wx-kf/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const APP = 'wxidemshards00001';
const SECRET = 'idempotency-secret';
const KEY = 'an-idempotency-api-key-0123456789';
const sim = new Simulator({ accounts: [{ appId: APP, appSecret: SECRET, type: 'miniprogram' }] });
let config: Config;
let redis: RedisClient;
let queues: Queues;
let admin: Awaited<ReturnType<typeof buildAdminApp>>;
let worker: RunningWorker;

const send = (body: object, key: string) =>
  admin.inject({
    method: 'POST',
    url: '/api/v1/messages',
    payload: body,
    headers: { authorization: `Bearer ${KEY}`, 'idempotency-key': key },
  });
const text = (content: string) => ({ msgtype: 'text', text: { content } });
/** Outbound jobs over every shard, in any state. */
const outboundJobs = async () =>
  (await Promise.all(queues.outbounds.map((q) => q.getJobs(['waiting', 'active', 'delayed', 'completed', 'failed']))))
    .flat()
    .filter((j) => j.data.appId === APP);
async function until(what: string, done: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`still waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  await sim.listen();
  config = loadConfig({
    REDIS_URL: await isolatedRedisUrl(),
    REDIS_SHARDS: '4',
    WECHAT_API_BASE: sim.url,
    WECHAT_APP_ID: APP,
    WECHAT_APP_SECRET: SECRET,
    WECHAT_TOKEN: 'idemToken',
    ADMIN_PASSWORD: 'idempotency-admin',
    ADMIN_API_KEY: KEY,
  });
  const logger = createLogger('idempotency-test', { level: 'silent' });
  redis = createRedis(config.redis, 'client');
  queues = new Queues(redis);
  admin = await buildAdminApp(config, logger, { queues });
  worker = await startWorker(config, logger, {
    outboundJobOptions: { ...OUTBOUND_JOB_OPTIONS, backoff: { type: 'fixed', delay: 20 } },
  });
});
afterAll(async () => {
  await worker?.close();
  await admin?.close();
  await queues?.close();
  redis?.disconnect();
  await sim.close();
});

/** Two users of the account on two different shards. */
function usersOnTwoShards(prefix: string): [string, string] {
  const users = Array.from({ length: 64 }, (_, i) => `${prefix}_${i}`);
  const first = users[0] as string;
  const other = users.find(
    (u) => keyspaceOf(redis).userShard(APP, u) !== keyspaceOf(redis).userShard(APP, first),
  ) as string;
  return [first, other];
}

describe('send API: Idempotency-Key with 4 shards', () => {
  it('40 concurrent POSTs with one key and two bodies (two users on two shards): one job, one send', async () => {
    expect(keyspaceOf(redis).shards).toBe(4);
    const [a, b] = usersOnTwoShards('o_idem_race');
    const conversations = new Conversations(redis);
    for (const u of [a, b]) await conversations.grant(APP, u, WINDOW_GRANTS.message);
    const bodies = [
      { appId: APP, touser: a, messages: [text('to a')] },
      { appId: APP, touser: b, messages: [text('to b')] },
    ];
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => send(bodies[i % 2] as object, 'race-1')));

    const accepted = answers.filter((r) => r.statusCode === 202);
    const jobIds = new Set(accepted.map((r) => r.json().jobId));
    expect(jobIds.size).toBe(1);
    // Every request with the winning body got that job back; every one with the other body got 422.
    const winner = accepted[0]?.json().jobId as string;
    const jobs = await outboundJobs();
    expect(jobs.map((j) => j.id)).toEqual([winner]);
    const winningUser = jobs[0]?.data.touser;
    answers.forEach((r, i) => {
      const sameBody = (bodies[i % 2] as { touser: string }).touser === winningUser;
      expect(r.statusCode, `request ${i}`).toBe(sameBody ? 202 : 422);
    });
    await until('the send', () => sim.state.messagesFor(APP).length >= 1);
    await new Promise((r) => setTimeout(r, 300)); // a second job, had there been one, would be sent by now
    expect(sim.state.messagesFor(APP).map((m) => m.touser)).toEqual([winningUser]);
    expect((await outboundJobs()).length).toBe(1);
  });

  it('a key used with ignoreWindow or ignoreHandoff is another request than the same body without (422)', async () => {
    const [u] = usersOnTwoShards('o_idem_flags');
    await new Conversations(redis).grant(APP, u, WINDOW_GRANTS.message);
    const body = { appId: APP, touser: u, messages: [text('flags')] };
    expect((await send(body, 'flags-1')).statusCode).toBe(202);
    for (const flags of [{ ignoreWindow: true }, { ignoreHandoff: true }]) {
      const again = await send({ ...body, ...flags }, 'flags-1');
      expect(again.statusCode, JSON.stringify(flags)).toBe(422);
      expect(again.json().error).toBe('idempotency_key');
    }
    expect((await send(body, 'flags-1')).statusCode).toBe(202); // the same request is still answered
  });

  it('a job add that fails releases the claim: the retry with the same key queues the job', async () => {
    const [u] = usersOnTwoShards('o_idem_fail');
    await new Conversations(redis).grant(APP, u, WINDOW_GRANTS.message);
    const body = { appId: APP, touser: u, messages: [text('after a failure')] };
    // The user's outbound queue refuses writes: its meta key holds a string, so BullMQ's add script fails.
    const queue = queues.outboundFor(APP, u);
    const meta = `${queue.opts.prefix}:${queue.name}:meta`;
    const saved = await redis.dumpBuffer(meta);
    await redis.set(meta, 'not a hash');
    try {
      const failed = await send(body, 'fail-1');
      expect(failed.statusCode).toBe(500);
    } finally {
      await redis.del(meta);
      if (saved) await redis.restore(meta, 0, saved);
    }
    const retried = await send(body, 'fail-1');
    expect(retried.statusCode).toBe(202);
    expect(retried.headers['idempotent-replayed']).toBeUndefined();
    expect(await queue.getJob(retried.json().jobId)).toBeDefined();
  });
});
