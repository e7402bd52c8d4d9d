import { writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Conversations, WINDOW_GRANTS } from '@wx-kf/shared/conversation';
import { Handoffs } from '@wx-kf/shared/handoff';
import { INBOUND_QUEUE, inboundJob, openQueue } from '@wx-kf/shared/queue';
import { createRedis } from '@wx-kf/shared/redis';
import { PullState } from '@wx-kf/shared/wecom';
import { isolatedRedisUrl, ServiceProcess } from '@wx-kf/testkit';
import { Simulator } from '@wx-kf/wechat-sim';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// `pnpm queues wecom …` (and the commands a wecom-kf account shares with the others) as their own processes,
// against a test Redis and the simulator's WeCom API.
const CORP = 'wwclicorp00000001';
const WRONG = 'wwclicorpwrong001'; // configured with a secret WeCom refuses (40001)
const MP = 'wxclimp0000000001';
const KF = 'wkCliKf00000000000000000000001';
const KF2 = 'wkCliKf00000000000000000000002';
const CUSTOMER = 'wmCliCustomer000000000000000001';
const AES = 'WeComCliTestEncodingAESKey00000000000000000';
const CURSOR = 'CURSORabcdefghijklmnopqrstuvwxyz0123456789';
const sim = new Simulator({
  accounts: [],
  wecom: {
    corps: [
      {
        corpId: CORP,
        secret: 'kf-secret',
        token: 'cliToken',
        aesKey: AES,
        kfAccounts: [
          { openKfId: KF, name: '售后客服' },
          { openKfId: KF2, name: 'Sales\u001b]0;pwned\u0007' },
        ],
        servicers: ['agent1'],
      },
      { corpId: WRONG, secret: 'the-right-secret', token: 'cliToken2', aesKey: AES, kfAccounts: [] },
    ],
  },
});
let redis: Redis;
let env: NodeJS.ProcessEnv;

/** Runs `pnpm queues …` as its own process; resolves its exit code and output (stdout and stderr). */
async function cli(...args: string[]): Promise<{ code: number | null; out: string }> {
  const p = ServiceProcess.start('queues', env, args);
  const code = await p.exited;
  return { code, out: p.output.join('\n') };
}

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wx-kf-wecom-cli-'));
  const accounts = join(dir, 'accounts.json');
  writeFileSync(
    accounts,
    JSON.stringify({
      accounts: [
        { appId: CORP, appSecret: 'kf-secret', token: 'cliToken', aesKey: AES, type: 'wecom-kf' },
        { appId: WRONG, appSecret: 'a-wrong-secret', token: 'cliToken2', aesKey: AES, type: 'wecom-kf' },
        { appId: MP, appSecret: 'mp-secret', token: 'mpCliToken', type: 'miniprogram' },
      ],
    }),
  );
  await sim.listen();
  const redisUrl = await isolatedRedisUrl();
  redis = createRedis(redisUrl, 'client');
  env = { REDIS_URL: redisUrl, WECHAT_ACCOUNTS_FILE: accounts, WECOM_API_BASE: sim.url };
});
afterAll(async () => {
  redis.disconnect();
  await sim.close();
});

describe('pnpm queues wecom cursor', () => {
  it('is listed by --help, with its two commands', async () => {
    const [root, group] = await Promise.all([cli('--help'), cli('wecom', '--help')]);
    expect(root.code).toBe(0);
    expect(root.out).toMatch(/wecom\s+WeCom customer service/);
    expect(group.out).toContain('cursor [options] <corpId> <openKfId>');
    expect(group.out).toContain('accounts [options] <corpId>');
  });

  it('shows the pull state written by a puller: the cursor as a prefix and its length, never whole', async () => {
    const pulls = new PullState(redis);
    const at = Date.now();
    expect(await pulls.claim(CORP, KF, 'job-pull-1', { token: 'NoticeToken1', at })).toMatchObject({ cursor: '' });
    const page = { first: true, items: [{ msgid: 'm1' }] };
    expect(await pulls.savePage(CORP, KF, 'job-pull-1', '', CURSOR, { ...page, last: true })).toBe('saved');

    const [json, human] = await Promise.all([
      cli('wecom', 'cursor', CORP, KF, '--json'),
      cli('wecom', 'cursor', CORP, KF),
    ]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.out)).toEqual({
      corpId: CORP,
      openKfId: KF,
      cursor: { prefix: 'CURSORab', length: CURSOR.length },
      notices: 1,
      tokenAt: new Date(at).toISOString(),
      puller: 'job-pull-1',
      pages: 1,
    });
    expect(human.code).toBe(0);
    expect(human.out.split('\n')).toEqual([
      `${CORP} / ${KF}`,
      `cursor: CURSORab… (${CURSOR.length} characters)`,
      'notices counted: 1',
      `newest Token: ${new Date(at).toISOString()}`,
      'puller: job-pull-1 (pulling now)',
      'pages pulled, not yet stored: 1',
    ]);
    for (const { out } of [json, human]) expect(out).not.toContain(CURSOR);
  });

  it('--reset forgets the cursor, says where the next pull starts, and keeps the rest', async () => {
    const reset = await cli('wecom', 'cursor', CORP, KF, '--reset');
    expect(reset.code).toBe(0);
    expect(reset.out).toContain(`forgot the cursor of ${CORP} / ${KF} (was CURSORab… (${CURSOR.length} characters))`);
    expect(reset.out).toContain('the next pull starts at what WeCom still keeps (3 days)');
    expect(reset.out).toContain('messages older than 300 s (WECOM_HISTORY_MAX_AGE_SECONDS)');
    expect(reset.out).toContain('the pull running (job-pull-1) stops at its next page');
    const after = JSON.parse((await cli('wecom', 'cursor', CORP, KF, '--json')).out);
    expect(after).toMatchObject({ cursor: null, notices: 1, puller: 'job-pull-1', pages: 1 });
    expect((await cli('wecom', 'cursor', CORP, KF)).out).toContain(
      'cursor: none (the next pull starts at what WeCom still keeps: 3 days)',
    );
    const again = JSON.parse((await cli('wecom', 'cursor', CORP, KF, '--reset', '--json')).out);
    expect(again).toEqual({ corpId: CORP, openKfId: KF, reset: true, previous: null, historyMaxAgeSeconds: 300 });
  });

  it('shows an open_kfid never pulled as empty', async () => {
    const shown = JSON.parse((await cli('wecom', 'cursor', CORP, KF2, '--json')).out);
    expect(shown).toEqual({
      corpId: CORP,
      openKfId: KF2,
      cursor: null,
      notices: 0,
      tokenAt: null,
      puller: null,
      pages: 0,
    });
  });

  it.each([
    [
      ['wecom', 'cursor', 'wwnotthere', KF],
      `queues: unknown WeCom corp "wwnotthere" (wecom-kf accounts configured: ${CORP}, ${WRONG})`,
    ],
    [
      ['wecom', 'cursor', MP, KF],
      `queues: account "${MP}" is a miniprogram, not a WeCom customer-service corp (wecom-kf)`,
    ],
    [['wecom', 'cursor', CORP, 'wk/../x'], 'queues: "wk/../x" is not an open_kfid'],
    [['wecom', 'cursor', CORP], "queues: missing required argument 'openKfId'"],
    [['wecom', 'accounts', 'wwnotthere'], 'queues: unknown WeCom corp "wwnotthere"'],
  ])('%j fails with one line and exit code 1', { concurrent: true }, async (args, message) => {
    const { code, out } = await cli(...args);
    expect(code).toBe(1);
    expect(out.split('\n')).toHaveLength(1);
    expect(out).toContain(message);
  });
});

describe('pnpm queues wecom accounts', () => {
  it("lists the corp's customer-service accounts from kf/account/list, terminal-safe, and as JSON", async () => {
    const [human, json] = await Promise.all([cli('wecom', 'accounts', CORP), cli('wecom', 'accounts', CORP, '--json')]);
    expect(human.code).toBe(0);
    expect(human.out).toMatch(new RegExp(`${KF}\\s*│\\s*售后客服`));
    expect(human.out).toContain('Sales\\u001b]0;pwned\\u0007');
    expect(human.out).not.toContain('\u001b');
    expect(json.out).not.toContain('\u001b');
    expect(JSON.parse(json.out)).toEqual([
      { openKfId: KF, name: '售后客服' },
      { openKfId: KF2, name: 'Sales\u001b]0;pwned\u0007' },
    ]);
  });

  it('says what WeCom refused in one line: a wrong secret (40001)', async () => {
    for (let i = 0; i < 2; i++) {
      // The second run meets the token cooldown the first one left: the same line.
      const { code, out } = await cli('wecom', 'accounts', WRONG);
      expect(code).toBe(1);
      expect(out).toBe('queues: WeCom refused: 40001 invalid secret');
    }
  });
});

describe('pnpm queues for a wecom-kf account: user, session, agents', () => {
  it("shows a WeCom customer's window and timeline by CorpID and external_userid", async () => {
    await new Conversations(redis).grant(CORP, CUSTOMER, WINDOW_GRANTS.message);
    const shown = await cli('user', CORP, CUSTOMER, '--json');
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.out).window).toMatchObject({ open: true, left: 5 });
    expect((await cli('user', CORP, CUSTOMER)).out).toContain(`${CORP} / ${CUSTOMER}\nwindow: open until`);
  });

  it("session open moves WeCom's session to the servicer, then the handoff; close ends it and gives the customer back", async () => {
    sim.wecom.customerMessage({ corpId: CORP, openKfId: KF, externalUserId: CUSTOMER, content: 'a person please' });
    const session = () => sim.wecom.sessions.get(CORP, KF, CUSTOMER);
    const handedOff = () => new Handoffs({ redis, idleMs: 60_000 }).isOpen(CORP, CUSTOMER);
    // Two kf accounts: which one's session moves must be said; nothing changes before.
    const which = await cli('session', 'open', CUSTOMER, '--account', CORP, '--agent', 'agent1');
    expect(which.code).toBe(1);
    expect(which.out).toContain('the corp has 2 customer-service accounts: name the one (--kf / open_kfid)');
    // WeCom's refusal (no such servicer) is one line, and wx-kf's handoff stays closed.
    const unknown = await cli('session', 'open', CUSTOMER, '--account', CORP, '--kf', KF, '--agent', 'nobody');
    expect(unknown.code).toBe(1);
    expect(unknown.out).toBe('queues: WeCom refused: 60111 userid not found');
    expect(await handedOff()).toBe(false);

    const open = await cli('session', 'open', CUSTOMER, '--account', CORP, '--kf', KF, '--agent', 'agent1');
    expect(open.code).toBe(0);
    expect(open.out).toContain('handed to a human');
    expect(open.out).toContain(`WeCom session with ${KF}: with a person (agent1)`);
    expect(session()).toMatchObject({ state: 3, servicer: 'agent1' });
    expect(await handedOff()).toBe(true);
    // Without --kf, show and close look at every kf account of the corp.
    const shown = JSON.parse((await cli('session', 'show', CUSTOMER, '--account', CORP, '--json')).out);
    expect(shown.wecom).toEqual([
      { openKfId: KF, state: 3, servicer: 'agent1' },
      { openKfId: KF2, state: 0 },
    ]);
    const close = await cli('session', 'close', CUSTOMER, '--account', CORP);
    expect(close.code).toBe(0);
    expect(close.out).toContain(`with the bot (no handoff); WeCom session with ${KF}: ended`);
    expect(session().state).toBe(4);
    expect(sim.wecom.sessions.get(CORP, KF2, CUSTOMER).state).toBe(0);
    // From an ended session WeCom allows no move: its 95016 in one line.
    const again = await cli('session', 'open', CUSTOMER, '--account', CORP, '--kf', KF);
    expect(again.out).toBe('queues: WeCom refused: 95016 state not allow trans');
    expect(again.code).toBe(1);
  });

  it('agents are refused for a WeCom corp in one line, without asking WeCom', async () => {
    const tokensBefore = sim.wecom.tokenRequests.get(CORP) ?? 0;
    const agents = await cli('agents', 'list', '--account', CORP);
    expect(agents.code).toBe(1);
    expect(agents.out.split('\n')).toHaveLength(1);
    expect(agents.out).toContain('WeCom customer-service accounts (wecom-kf) have no Official Account agent');
    expect(sim.wecom.tokenRequests.get(CORP) ?? 0).toBe(tokensBefore);
  });
});

describe('pnpm queues show for a WeCom pull notice', () => {
  it('shows the notice without its sync Token (it pulls the open_kfid for 10 minutes)', async () => {
    const inbound = openQueue(INBOUND_QUEUE, redis);
    try {
      const message = {
        ToUserName: CORP,
        FromUserName: KF,
        CreateTime: '1700000000',
        MsgType: 'event',
        Event: 'kf_msg_or_event',
        OpenKfId: KF,
        Token: 'SYNCTOKENsecret0123456789',
      };
      const job = inboundJob(CORP, message, { mode: 'safe', format: 'xml' });
      await inbound.add(job.name, job.data, job.opts);
      for (const args of [
        ['show', job.opts.jobId, '--json'],
        ['show', job.opts.jobId],
      ]) {
        const shown = await cli(...args);
        expect(shown.code).toBe(0);
        expect(shown.out).toContain('kf_msg_or_event');
        expect(shown.out).not.toContain('SYNCTOKENsecret0123456789');
      }
    } finally {
      await inbound.close();
    }
  });
});
