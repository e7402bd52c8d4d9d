// WeCom customer service (微信客服) end to end: the simulator's WeCom, a real ingress process and real worker
// processes on a real Redis. The callback is a notice; the workers pull, answer and hand over.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Conversations } from '@wx-kf/shared/conversation';
import { Handoffs } from '@wx-kf/shared/handoff';
import { INBOUND_QUEUE, type InboundJobData, openQueue, readInboundResult } from '@wx-kf/shared/queue';
import { createRedis, keyspaceOf } from '@wx-kf/shared/redis';
import { PullState } from '@wx-kf/shared/wecom';
import { freePort, isolatedRedisUrl, ServiceProcess } from '@wx-kf/testkit';
import { type SimCorp, Simulator } from '@wx-kf/wechat-sim';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

const KF = 'wkTESTKF0000000000000000000001';
const CORP: SimCorp = {
  corpId: 'wwtestcorp0000001',
  secret: 'kf-secret-for-tests',
  token: 'wecomTestToken1',
  aesKey: 'WeComTestEncodingAESKey0000000000000000000A',
  kfAccounts: [{ openKfId: KF, name: 'test kf' }],
  servicers: ['agent1'],
};
const sim = new Simulator({ accounts: [], wecom: { corps: [CORP] } });
const dir = mkdtempSync(join(tmpdir(), 'wx-kf-wecom-'));
const accountsFile = join(dir, 'accounts.json');
writeFileSync(
  accountsFile,
  JSON.stringify({
    accounts: [
      { appId: CORP.corpId, appSecret: CORP.secret, token: CORP.token, aesKey: CORP.aesKey, type: 'wecom-kf' },
    ],
  }),
);
const rulesFile = join(dir, 'rules.json');
// A rules file's media sits beside it; the worker uploads it with the corp's token (WeCom's media/upload).
const PICTURE = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');
writeFileSync(join(dir, 'picture.png'), PICTURE);
const text = (content: string) => ({ msgtype: 'text', text: { content } });
writeFileSync(
  rulesFile,
  JSON.stringify({
    rules: [
      { when: { event: 'enter_session' }, reply: [text('welcome!')] },
      { when: { msgType: 'text', contains: 'human' }, transfer: { kfAccount: 'agent1' } },
      { when: { msgType: 'text', contains: 'six' }, reply: [1, 2, 3, 4, 5, 6].map((i) => text(`part ${i}`)) },
      { when: { msgType: 'text', contains: 'ask' }, ai: { handover: [text('a person will answer you')] } },
      { when: { msgType: 'text', contains: 'picture' }, reply: [{ msgtype: 'image', image: { file: 'picture.png' } }] },
    ],
    fallback: [text('got {{Content}}')],
  }),
);

let redisUrl: string;
let redis: Redis;
let inbound: Queue<InboundJobData>;
let ingressUrl: string;
let running: ServiceProcess[] = [];

const env = (): NodeJS.ProcessEnv => ({
  REDIS_URL: redisUrl,
  WECHAT_ACCOUNTS_FILE: accountsFile,
  WECOM_API_BASE: sim.url,
  WECHAT_API_BASE: sim.url,
  REPLY_RULES_FILE: rulesFile,
  // The simulator's fake model: "真人" (a person) makes it hand the customer over (transfer_to_human).
  AI_BASE_URL: `${sim.url}/v1`,
  AI_MODEL: 'wx-kf-fake',
  WORKER_CONCURRENCY: '50',
  WORKER_LOCK_DURATION_MS: '2000',
});

async function worker(extra: NodeJS.ProcessEnv = {}): Promise<ServiceProcess> {
  const p = ServiceProcess.start('worker', { ...env(), ...extra });
  running.push(p);
  await p.waitFor('worker started');
  return p;
}

async function until(check: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** What the customers received, by customer, in delivery order (text content). */
function received(): Map<string, string[]> {
  const byUser = new Map<string, string[]>();
  for (const m of sim.wecom.sentTo(CORP.corpId)) {
    const body = m.body.text;
    const content = typeof body === 'object' && body !== null && 'content' in body ? String(body.content) : m.msgtype;
    byUser.set(m.touser, [...(byUser.get(m.touser) ?? []), content]);
  }
  return byUser;
}

/** The stored results of the inbound jobs, by outcome name. */
async function outcomes(): Promise<Record<string, number>> {
  const jobs = await inbound.getJobs(['completed'], 0, -1);
  const counts: Record<string, number> = {};
  for (const job of jobs) {
    const action = readInboundResult(job.returnvalue)?.action ?? 'unknown';
    counts[action] = (counts[action] ?? 0) + 1;
  }
  return counts;
}

const customers = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `wm_${tag}_${i}`);

beforeAll(async () => {
  await sim.listen();
});
beforeEach(async () => {
  redisUrl = await isolatedRedisUrl();
  redis = createRedis(redisUrl, 'client');
  inbound = openQueue(INBOUND_QUEUE, redis);
  sim.reset();
  const port = await freePort();
  const ingress = ServiceProcess.start('ingress', { ...env(), HOST: '127.0.0.1', PORT: String(port) });
  running.push(ingress);
  await ingress.waitFor('ingress listening');
  ingressUrl = `http://127.0.0.1:${port}`;
});
afterEach(async () => {
  await Promise.all(running.map((p) => p.stop('SIGKILL')));
  running = [];
  await inbound.close();
  redis.disconnect();
});
afterAll(() => sim.close());

describe('WeCom customer service through ingress and worker processes', () => {
  it('answers the URL check with the decrypted echostr', async () => {
    const check = await sim.wecom.verifyUrl(ingressUrl, CORP.corpId);
    expect(check.status).toBe(200);
    expect(check.body).toBe(check.expected);
    const tampered = await sim.wecom.verifyUrl(ingressUrl, CORP.corpId, { tamper: true });
    expect(tampered.status).toBeGreaterThanOrEqual(400);
  });

  it('one callback delivered three times and a 2 500-message backlog: one reply per msgid, in each customer’s order', async () => {
    await Promise.all([worker(), worker()]);
    const users = customers(500, 'backlog');
    sim.wecom.customerMessages(2500, {
      corpId: CORP.corpId,
      openKfId: KF,
      externalUserIds: users,
      content: (i) => `m${Math.floor(i / users.length)}`, // each customer's messages are m0 … m4, in order
    });
    const notice = await sim.wecom.notify(ingressUrl, CORP.corpId, KF, { times: 3 });
    expect(notice.status).toBe(200);
    await until(() => sim.wecom.sent.length >= 2500);
    await new Promise((r) => setTimeout(r, 500)); // anything extra would show up now
    const got = received();
    expect(got.size).toBe(500);
    for (const user of users) expect(got.get(user)).toEqual(['got m0', 'got m1', 'got m2', 'got m3', 'got m4']);
    expect(sim.wecom.sent).toHaveLength(2500);
    expect(sim.wecom.duplicateSends).toBe(0);
    expect(sim.wecom.syncCallsByKf.get(KF)).toBeGreaterThanOrEqual(3); // 1000 per page
    expect(sim.wecom.maxConcurrentSyncs.get(KF)).toBe(1);
    // The three deliveries of the callback are one notice job.
    expect((await outcomes()).pulled).toBe(1);
  }, 120_000);

  it('a worker killed between pages: after a restart nothing is lost or doubled', async () => {
    sim.slow({ path: '/cgi-bin/kf/sync_msg', fixedMs: 800 });
    const victim = await worker();
    // 4 each: a send taken by a killed worker stays counted (the ledger never over-sends), so 5 could leave one short.
    const users = customers(300, 'kill');
    sim.wecom.customerMessages(1200, { corpId: CORP.corpId, openKfId: KF, externalUserIds: users });
    await sim.wecom.notify(ingressUrl, CORP.corpId, KF);
    await until(() => sim.wecom.sent.length > 0); // the first page is stored and being answered
    await victim.stop('SIGKILL');
    const pulledBefore = sim.wecom.syncCalls;
    // Killed mid-pull: its job still holds the open_kfid, and the cursor is the first page's.
    expect(await new PullState(redis).view(CORP.corpId, KF)).toMatchObject({ puller: expect.any(String) });
    expect(sim.wecom.sent.length).toBeLessThan(1200);
    await worker(); // takes the stalled notice job over: same job, same pull
    await until(() => sim.wecom.sent.length >= 1200, 90_000);
    await new Promise((r) => setTimeout(r, 500));
    const got = received();
    for (const user of users) expect(got.get(user)).toHaveLength(4);
    expect(sim.wecom.sent).toHaveLength(1200);
    expect(sim.wecom.syncCalls).toBeGreaterThan(pulledBefore);
    console.log(
      `[wecom] SIGKILL between pages: 1200 delivered once each; ${sim.wecom.duplicateSends} send(s) retried with the same msgid and not delivered again`,
    );
  }, 180_000);

  it('two callbacks while a pull runs: one puller, which goes round once more', async () => {
    sim.slow({ path: '/cgi-bin/kf/sync_msg', fixedMs: 600 });
    await Promise.all([worker(), worker()]);
    const first = customers(40, 'first');
    sim.wecom.customerMessages(40, { corpId: CORP.corpId, openKfId: KF, externalUserIds: first });
    await sim.wecom.notify(ingressUrl, CORP.corpId, KF);
    await until(() => sim.wecom.syncCalls >= 1);
    const later = customers(20, 'later');
    sim.wecom.customerMessages(20, { corpId: CORP.corpId, openKfId: KF, externalUserIds: later });
    await Promise.all([sim.wecom.notify(ingressUrl, CORP.corpId, KF), sim.wecom.notify(ingressUrl, CORP.corpId, KF)]);
    await until(() => sim.wecom.sent.length >= 60);
    await until(async () => ((await inbound.getJobCounts('completed')).completed ?? 0) >= 63);
    expect(sim.wecom.maxConcurrentSyncs.get(KF)).toBe(1);
    const counts = await outcomes();
    expect(counts.pulled).toBe(1);
    expect(counts.joined).toBe(2);
    expect(sim.wecom.sent).toHaveLength(60);
  }, 60_000);

  it('a pull held by a job that is gone (failed, removed) is taken over by the next notice, not joined', async () => {
    await worker();
    // A lock left by a job the queue does not know: its lease (60 s) has not run out.
    await new PullState(redis).claim(CORP.corpId, KF, 'job-that-is-gone', { at: Date.now() });
    sim.wecom.customerMessage({ corpId: CORP.corpId, openKfId: KF, externalUserId: 'wm_takeover', content: 'hi' });
    await sim.wecom.notify(ingressUrl, CORP.corpId, KF);
    await until(() => sim.wecom.sent.length >= 1);
    expect(received().get('wm_takeover')).toEqual(['got hi']);
    expect(await outcomes()).toMatchObject({ pulled: 1 });
  });

  it('a first pull with 3 days of history answers none of the old messages and records them', async () => {
    await worker();
    const user = 'wm_history_0';
    sim.wecom.history({ corpId: CORP.corpId, openKfId: KF, externalUserId: user, daysAgo: 2, count: 10 });
    sim.wecom.customerMessage({ corpId: CORP.corpId, openKfId: KF, externalUserId: user, content: 'now' });
    await sim.wecom.notify(ingressUrl, CORP.corpId, KF);
    await until(() => sim.wecom.sent.length >= 1);
    await until(async () => (await outcomes()).history === 10);
    expect(received().get(user)).toEqual(['got now']);
    const view = await new Conversations(redis).view(CORP.corpId, user);
    expect(view.timeline.filter((e) => e.direction === 'in')).toHaveLength(11);
  });

  it('a welcome code is used within its 20 s, and takes none of the 5 sends a message allows', async () => {
    await worker();
    const user = 'wm_welcome';
    sim.wecom.customerMessage({ corpId: CORP.corpId, openKfId: KF, externalUserId: user, content: 'hi' });
    const { welcomeCode } = sim.wecom.enterSession({ corpId: CORP.corpId, openKfId: KF, externalUserId: user });
    expect(welcomeCode).toBeTruthy();
    await sim.wecom.notify(ingressUrl, CORP.corpId, KF);
    await until(() => sim.wecom.sent.length >= 2);
    const [reply, welcome] = sim.wecom.sentTo(CORP.corpId, user);
    expect(reply?.viaEvent).toBeUndefined();
    expect(reply?.body).toMatchObject({ text: { content: 'got hi' } });
    expect(welcome).toMatchObject({ viaEvent: true, body: { text: { content: 'welcome!' } } });
    // WeCom counts the reply, not the welcome: 4 of the message's 5 sends are left, in WeCom and in the ledger.
    const view = await new Conversations(redis).view(CORP.corpId, user);
    expect(view.window).toMatchObject({ open: true, left: 4 });
  });

  it('a transfer moves the session to the agent and the bot stays silent; 95018 is not retried and reads the state', async () => {
    await worker();
    const user = 'wm_transfer';
    sim.wecom.customerMessage({ corpId: CORP.corpId, openKfId: KF, externalUserId: user, content: 'a human please' });
    await sim.wecom.notify(ingressUrl, CORP.corpId, KF);
    await until(() => sim.wecom.transCalls.length >= 1);
    expect(sim.wecom.transCalls[0]).toMatchObject({ externalUserId: user, to: 3, servicer: 'agent1', errcode: 0 });
    expect(sim.wecom.state(CORP.corpId, KF, user).service_state).toBe(3);
    const handoffs = new Handoffs({ redis, idleMs: 60_000 });
    await until(async () => (await handoffs.isOpen(CORP.corpId, user)) === true);
    sim.wecom.customerMessage({ corpId: CORP.corpId, openKfId: KF, externalUserId: user, content: 'hello?' });
    await sim.wecom.notify(ingressUrl, CORP.corpId, KF);
    await until(async () => (await outcomes()).handoff === 1);
    expect(sim.wecom.sentTo(CORP.corpId, user)).toEqual([]);

    // A person has another customer's session, and no event told us: the bot's send gets 95018.
    const other = 'wm_taken';
    sim.wecom.customerMessage({ corpId: CORP.corpId, openKfId: KF, externalUserId: other, content: 'hi' });
    sim.wecom.sessions.set(CORP.corpId, KF, other, 3, 'agent1');
    await sim.wecom.notify(ingressUrl, CORP.corpId, KF);
    await until(async () => ((await inbound.getJobCounts('failed')).failed ?? 0) >= 1);
    const [failed] = await inbound.getJobs(['failed']);
    expect(failed?.failedReason).toMatch(/^95018/);
    expect(failed?.attemptsMade).toBe(1); // never retried
    expect(await handoffs.get(CORP.corpId, other)).toMatchObject({
      open: true,
      agent: 'agent1',
      reason: 'session_state',
    });
    expect(sim.wecom.sentTo(CORP.corpId, other)).toEqual([]);
  });

  it('an agent’s message and a failed send go into the timeline, unanswered', async () => {
    await worker();
    const user = 'wm_timeline';
    const target = { corpId: CORP.corpId, openKfId: KF, externalUserId: user };
    sim.wecom.customerMessage({ ...target, content: 'hi' });
    sim.wecom.agentMessage({ ...target, content: 'a person here', servicer: 'agent1' });
    sim.wecom.sendFailed(CORP.corpId, KF, user, 'msg_we_sent_1', 1);
    await sim.wecom.notify(ingressUrl, CORP.corpId, KF);
    await until(async () => ((await inbound.getJobCounts('completed')).completed ?? 0) >= 4);
    expect(received().get(user)).toEqual(['got hi']);
    const { timeline } = await new Conversations(redis).view(CORP.corpId, user);
    expect(timeline).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ direction: 'out', kind: 'text', summary: 'a person here', result: 'agent agent1' }),
        expect.objectContaining({
          direction: 'in',
          kind: 'msg_send_fail',
          summary: 'send msg_we_sent_1 failed (type 1)',
          result: 'send failed',
        }),
      ]),
    );
  }, 60_000);

  it('the model’s hand-over: its reply goes out, then the session moves to the queue and the bot is silent', async () => {
    await worker();
    const user = 'wm_model';
    sim.wecom.customerMessage({ corpId: CORP.corpId, openKfId: KF, externalUserId: user, content: 'ask 真人' });
    await sim.wecom.notify(ingressUrl, CORP.corpId, KF);
    await until(() => sim.wecom.transCalls.length >= 1);
    expect(received().get(user)).toEqual(['a person will answer you']);
    expect(sim.wecom.transCalls[0]).toMatchObject({ externalUserId: user, to: 2, errcode: 0 });
    const handoffs = new Handoffs({ redis, idleMs: 60_000 });
    expect(await handoffs.get(CORP.corpId, user)).toMatchObject({ open: true, reason: 'ai' });
  }, 60_000);

  it('the model’s hand-over whose reply cannot go now: the session moves at once, and the customer’s order moves on', async () => {
    await worker();
    const user = 'wm_model_stop';
    sim.fail({ path: '/cgi-bin/kf/send_msg', script: [{ errcode: -1, errmsg: 'system busy' }] });
    sim.wecom.customerMessage({ corpId: CORP.corpId, openKfId: KF, externalUserId: user, content: 'ask 真人' });
    await sim.wecom.notify(ingressUrl, CORP.corpId, KF);
    await until(async () => (await outcomes()).handoff === 1);
    expect(sim.wecom.transCalls).toMatchObject([{ externalUserId: user, to: 2, errcode: 0 }]);
    expect(sim.wecom.sentTo(CORP.corpId, user)).toEqual([]); // dropped: a person is asked for
    expect(await redis.llen(keyspaceOf(redis).userOrder(CORP.corpId, user))).toBe(0);
  }, 60_000);

  it('a callback that never comes: the catch-up pull answers within its period, once, and says so; an open_kfid WeCom lacks is dropped', async () => {
    const metricsPort = await freePort();
    const w = await worker({ WECOM_CATCHUP_SECONDS: '1', WORKER_METRICS_PORT: String(metricsPort) });
    const user = 'wm_catchup';
    const target = { corpId: CORP.corpId, openKfId: KF, externalUserId: user };
    sim.wecom.customerMessage({ ...target, content: 'first' });
    await sim.wecom.notify(ingressUrl, CORP.corpId, KF); // names the open_kfid
    await until(() => received().get(user)?.length === 1);
    // The next message's callback was lost 2 minutes ago (the ingress unreachable for all of WeCom's tries).
    const sendTime = Math.floor(Date.now() / 1000) - 120;
    sim.wecom.customerMessage({ ...target, content: 'unannounced', sendTime });
    await until(() => received().get(user)?.length === 2, 15_000);
    await w.waitFor('catch-up pull found messages no notice had pulled');
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`wxkf_wecom_catchup_messages_total\\{app_id="${CORP.corpId}"\\} [1-9]`));
    // More periods pull nothing new and send nothing again.
    const syncs = sim.wecom.syncCalls;
    await until(() => sim.wecom.syncCalls >= syncs + 2, 15_000);
    expect(received().get(user)).toEqual(['got first', 'got unannounced']);
    expect(sim.wecom.maxConcurrentSyncs.get(KF)).toBe(1);
    // A notice for an open_kfid WeCom does not have (95004) fails at once, and the catch-up pull never visits it.
    const nope = 'wkNOSUCHKF00000000000000000001';
    await sim.wecom.notify(ingressUrl, CORP.corpId, nope);
    await until(async () => ((await inbound.getJobCounts('failed')).failed ?? 0) === 1);
    const [failed] = await inbound.getJobs(['failed']);
    expect(failed?.failedReason).toMatch(/^95004 /);
    expect(failed?.attemptsMade).toBe(1);
    const kfSyncs = sim.wecom.syncCalls;
    await until(() => sim.wecom.syncCalls >= kfSyncs + 2, 15_000); // two more periods
    expect(sim.wecom.syncCallsByKf.get(nope)).toBe(1);
    expect(await new PullState(redis).known(CORP.corpId)).toEqual([KF]);
  }, 60_000);

  it('an image of the rules file is uploaded with the corp token, sent by kf/send_msg, and uploaded again once WeCom forgets it', async () => {
    await worker();
    const user = 'wm_picture';
    const target = { corpId: CORP.corpId, openKfId: KF, externalUserId: user };
    const mediaOf = (i: number) => {
      const image = sim.wecom.sentTo(CORP.corpId, user)[i]?.body.image;
      return typeof image === 'object' && image !== null && 'media_id' in image ? String(image.media_id) : '';
    };
    sim.wecom.customerMessage({ ...target, content: 'a picture please' });
    await sim.wecom.notify(ingressUrl, CORP.corpId, KF);
    await until(() => received().get(user)?.length === 1);
    const first = mediaOf(0);
    expect(sim.state.media.get(first)).toMatchObject({ appId: CORP.corpId, type: 'image', data: PICTURE });
    // WeCom keeps media 3 days: the cached media_id is refused (40007), the file goes up again, the image still arrives.
    sim.state.media.delete(first);
    sim.wecom.customerMessage({ ...target, content: 'another picture' });
    await sim.wecom.notify(ingressUrl, CORP.corpId, KF);
    await until(() => received().get(user)?.length === 2);
    expect(received().get(user)).toEqual(['image', 'image']);
    expect(mediaOf(1)).not.toBe(first);
    expect(sim.state.media.get(mediaOf(1))).toMatchObject({ appId: CORP.corpId, data: PICTURE });
  });

  it('the window’s sixth send is refused locally, never sent to WeCom', async () => {
    await worker();
    const user = 'wm_six';
    sim.wecom.customerMessage({ corpId: CORP.corpId, openKfId: KF, externalUserId: user, content: 'six please' });
    await sim.wecom.notify(ingressUrl, CORP.corpId, KF);
    await until(async () => ((await inbound.getJobCounts('failed')).failed ?? 0) >= 1);
    expect(received().get(user)).toEqual(['part 1', 'part 2', 'part 3', 'part 4', 'part 5']);
    const [failed] = await inbound.getJobs(['failed']);
    expect(failed?.failedReason).toMatch(/no sends left/);
    const view = await new Conversations(redis).view(CORP.corpId, user);
    expect(view.window.left).toBe(0);
  });
});
