// WeCom's pull channel, below the worker: how a pulled item becomes the pipeline's message, the pull state's
// fencing in Redis (real Redis), and the pull loop against a small WeCom stub on a real socket.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isolatedRedisUrl } from '@wx-kf/testkit';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WeChatClient } from '../../api/client.js';
import { WeChatHttp } from '../../api/http.js';
import { TokenManager } from '../../api/token-manager.js';
import { createLogger } from '../../log.js';
import { inboundJob } from '../../queue/index.js';
import { createRedis } from '../../redis/index.js';
import { WeComClient } from './client.js';
import { WECOM_ERRCODES } from './errcodes.js';
import { catchUpNotice, isPullNotice, pulledMessage, readPullNotice } from './message.js';
import { pull } from './pull.js';
import { PullState } from './pull-state.js';

const CORP = 'wwunit000000001';
const KF = 'wkUNIT00000000000000000000001';
let redis: Redis;
let n = 0;
const kf = () => `${KF}${++n}`;

beforeAll(async () => {
  redis = createRedis(await isolatedRedisUrl(), 'client');
});
afterAll(() => redis.disconnect());

describe('a pulled item as the pipeline reads it', () => {
  it('a customer’s text is a message from the external_userid to the open_kfid, with its msgid', () => {
    const item = {
      msgid: 'from_msgid_1',
      open_kfid: KF,
      external_userid: 'wmCUSTOMER1',
      send_time: 1_700_000_000,
      origin: 3,
      msgtype: 'text',
      text: { content: 'hello' },
    };
    expect(pulledMessage(item, KF)).toEqual({
      ToUserName: KF,
      FromUserName: 'wmCUSTOMER1',
      CreateTime: '1700000000',
      MsgType: 'text',
      Content: 'hello',
      MsgId: 'from_msgid_1',
      OpenKfId: KF,
      Origin: '3',
    });
  });

  it('events carry their type, code and servicers; an agent’s message says who sent it', () => {
    const welcome = pulledMessage(
      {
        msgid: 'e1',
        send_time: 1,
        origin: 4,
        msgtype: 'event',
        event: { event_type: 'enter_session', open_kfid: KF, external_userid: 'wmC2', welcome_code: 'CODE' },
      },
      KF,
    );
    expect(welcome).toMatchObject({ MsgType: 'event', Event: 'enter_session', WelcomeCode: 'CODE', MsgID: 'e1' });
    expect(welcome?.FromUserName).toBe('wmC2');
    const change = pulledMessage(
      {
        msgid: 'e2',
        send_time: 1,
        origin: 4,
        msgtype: 'event',
        event: {
          event_type: 'session_status_change',
          open_kfid: KF,
          external_userid: 'wmC2',
          change_type: 1,
          new_servicer_userid: 'agent1',
        },
      },
      KF,
    );
    expect(change).toMatchObject({ Event: 'session_status_change', ChangeType: '1', NewServicer: 'agent1' });
    const agent = { msgid: 'a1', send_time: 1, origin: 5, msgtype: 'text', text: { content: 'hi' } };
    expect(pulledMessage({ ...agent, external_userid: 'wmC2', servicer_userid: 'agent1' }, KF)).toMatchObject({
      Origin: '5',
      Servicer: 'agent1',
      Content: 'hi',
    });
  });

  it('an item naming no customer, with an unknown origin or an odd id is skipped; a msgid unfit for a job id is hashed', () => {
    const base = { msgid: 'x', send_time: 1, origin: 3, msgtype: 'text', text: { content: 'a' } };
    expect(pulledMessage(base, KF)).toBeUndefined(); // no external_userid
    expect(pulledMessage({ ...base, external_userid: 'wm:bad' }, KF)).toBeUndefined();
    expect(pulledMessage({ ...base, external_userid: 'wmC', origin: 9 }, KF)).toBeUndefined();
    expect(pulledMessage({ ...base, external_userid: 'wmC', msgid: 'x'.repeat(129) }, KF)?.MsgId).toMatch(/^h/);
    // A pulled event never passes for a pull notice.
    const event = { event_type: 'kf_msg_or_event', open_kfid: KF, external_userid: 'wmC' };
    const notice = pulledMessage({ ...base, origin: 4, msgtype: 'event', event }, KF);
    expect(notice?.Event).toBe('unknown');
    expect(isPullNotice(notice ?? {})).toBe(false);
    expect(pulledMessage('not an item', KF)).toBeUndefined();
    const odd = pulledMessage({ ...base, external_userid: 'wmC', msgid: 'a:b/c' }, KF);
    expect(odd?.MsgId).toMatch(/^h[0-9a-f]{40}$/);
  });

  it('the callback is a notice only when it is kf_msg_or_event; a bad OpenKfId is refused, a bad Token dropped', () => {
    const notice = { MsgType: 'event', Event: 'kf_msg_or_event', OpenKfId: KF, Token: 'T' };
    expect(readPullNotice(notice)).toEqual({ openKfId: KF, token: 'T' });
    expect(readPullNotice({ ...notice, Token: undefined })).toEqual({ openKfId: KF, token: undefined });
    expect(readPullNotice({ ...notice, Token: 'x'.repeat(600) })).toEqual({ openKfId: KF, token: undefined });
    expect(() => readPullNotice({ ...notice, OpenKfId: 'wk bad' })).toThrow(/OpenKfId/);
    expect(readPullNotice({ ...notice, Event: 'change_external_contact' })).toBeUndefined();
    expect(isPullNotice(notice)).toBe(true);
    expect(isPullNotice({ MsgType: 'text', Event: 'kf_msg_or_event' })).toBe(false);
  });
});

describe('the catch-up notice', () => {
  it('is one job per open_kfid and period, whichever worker makes it and when in the period', () => {
    const jobId = (kf: string, period: number, at: number) =>
      inboundJob(CORP, catchUpNotice(CORP, kf, period, at), { mode: 'safe', format: 'xml' }).opts.jobId;
    const a = jobId(KF, 7, 1_000);
    expect(jobId(KF, 7, 299_000)).toBe(a);
    expect(jobId(KF, 8, 301_000)).not.toBe(a);
    expect(jobId(`${KF}2`, 7, 1_000)).not.toBe(a);
    expect(isPullNotice(catchUpNotice(CORP, KF, 7, 1_000))).toBe(true);
  });
});

describe('the pull state in Redis', () => {
  it('one puller per open_kfid; a notice during its pull makes it go round once more, then it lets go', async () => {
    const state = new PullState(redis);
    const id = kf();
    const first = await state.claim(CORP, id, 'job-1', { token: 'T1', at: 1000 });
    expect(first).toMatchObject({ requested: '1', cursor: '', token: 'T1', tokenAt: 1000 });
    expect(await state.claim(CORP, id, 'job-2', { token: 'T2', at: 2000 })).toEqual({ holder: 'job-1' });
    // The same job run again (a stalled job) still owns its pull.
    expect(await state.claim(CORP, id, 'job-1', { at: 500 })).toMatchObject({ requested: '3', token: 'T2' });
    const again = await state.finish(CORP, id, 'job-1', '1');
    expect(again).toMatchObject({ requested: '3', token: 'T2', tokenAt: 2000 });
    expect(await state.finish(CORP, id, 'job-1', '3')).toBeUndefined();
    expect(await state.claim(CORP, id, 'job-4', { at: 3000 })).toMatchObject({ requested: '4' });
  });

  it('a page is written with the cursor after it, only by the puller and only from its cursor', async () => {
    const state = new PullState(redis);
    const id = kf();
    await state.claim(CORP, id, 'job-1', { at: 1 });
    const page = (first: boolean, items: number[], last = false) => ({ first, items, last });
    expect(await state.savePage(CORP, id, 'job-2', '', 'c1', page(true, [1]))).toBe('lost');
    expect(await state.savePage(CORP, id, 'job-1', 'c9', 'c1', page(true, [1]))).toBe('moved');
    expect(await state.savePage(CORP, id, 'job-1', '', 'c1', page(true, [1, 2]))).toBe('saved');
    // A first pull is one until its last page, whoever pulls the rest (a crash, a retry).
    expect(await state.claim(CORP, id, 'job-1', { at: 1 })).toMatchObject({ cursor: 'c1', first: true });
    expect(await state.savePage(CORP, id, 'job-1', 'c1', 'c2', page(true, [3], true))).toBe('saved');
    expect(await state.claim(CORP, id, 'job-1', { at: 1 })).toMatchObject({ cursor: 'c2', first: false });
    expect(await state.view(CORP, id)).toMatchObject({ cursor: 'c2', pages: 2, puller: 'job-1' });
    const oldest = await state.nextPage(CORP, id);
    expect(oldest).toMatchObject({ first: true, items: [1, 2] });
    // The same job run twice at once stores the page twice (its jobs are de-duplicated) and drops it once.
    if (!oldest) throw new Error('no page');
    expect(await state.pageStored(CORP, id, 'job-1', oldest)).toBe(true);
    expect(await state.pageStored(CORP, id, 'job-1', oldest)).toBe(true);
    expect(await state.nextPage(CORP, id)).toMatchObject({ first: true, items: [3] });
    // A reset while the pull runs: its next page finds the cursor moved.
    await state.resetCursor(CORP, id);
    expect(await state.savePage(CORP, id, 'job-1', 'c2', 'c3', page(false, [4]))).toBe('moved');
    expect((await state.view(CORP, id)).cursor).toBe('');
  });
});

describe('the pull loop', () => {
  let server: Server;
  let pages: ({ next_cursor: string; has_more: 0 | 1; msg_list: unknown[] } | { errcode: number })[];
  const syncs: { cursor?: string; token?: string }[] = [];
  let client: WeComClient;
  let tokens: TokenManager;
  let http: WeChatHttp;

  beforeAll(async () => {
    // WeCom as far as this loop sees it: gettoken, and kf/sync_msg answering `pages` in turn.
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        if (req.url?.startsWith('/cgi-bin/gettoken')) {
          res.end(JSON.stringify({ errcode: 0, access_token: 'AT', expires_in: 7200 }));
          return;
        }
        syncs.push(JSON.parse(body));
        res.end(
          JSON.stringify({ errcode: 0, ...(pages.shift() ?? { next_cursor: 'end', has_more: 0, msg_list: [] }) }),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    http = new WeChatHttp({ baseUrl: base, errcodes: WECOM_ERRCODES });
    const logger = createLogger('test', { level: 'silent' });
    const corp = { appId: CORP, appSecret: 's', type: 'wecom-kf' };
    tokens = new TokenManager({ redis, http, accounts: [corp], source: 'wecom', logger });
    client = new WeComClient(http, new WeChatClient(http, tokens, redis));
  });
  afterAll(async () => {
    tokens.close();
    await http.close();
    await new Promise((r) => server.close(r));
  });

  const item = (i: number, sendTime: number) => ({
    msgid: `m${i}`,
    external_userid: 'wmLOOP',
    open_kfid: KF,
    send_time: sendTime,
    origin: 3,
    msgtype: 'text',
    text: { content: `m${i}` },
  });

  /** Pull deps (history after 5 minutes) that record each stored message's msgid and whether it is history. */
  const recording = () => {
    const stored: { id: string; history: boolean }[] = [];
    const store = async (_corp: string, ms: { message: { MsgId?: string }; history: boolean }[]) => {
      stored.push(...ms.map((m) => ({ id: String(m.message.MsgId), history: m.history })));
    };
    return { stored, deps: { kf: client, state: new PullState(redis), historyMaxAgeMs: 300_000, store } };
  };

  it('a token manager serves only its own source’s accounts: a corp never asks WeChat, an AppID never WeCom', async () => {
    const logger = createLogger('test', { level: 'silent' });
    const accounts = [{ appId: CORP, appSecret: 's', type: 'wecom-kf' }];
    const wechat = new TokenManager({ redis, http, accounts, source: 'stable', logger });
    try {
      await expect(wechat.getToken(CORP)).rejects.toThrow();
    } finally {
      wechat.close();
    }
    await expect(tokens.getToken(CORP)).resolves.toBe('AT');
  });

  it('pages until has_more is 0, storing each page in order; a first pull marks old messages as history', async () => {
    const now = Math.floor(Date.now() / 1000);
    pages = [
      { next_cursor: 'c1', has_more: 1, msg_list: [item(1, now - 3600), item(2, now)] },
      { next_cursor: 'c2', has_more: 0, msg_list: [item(3, now)] },
    ];
    syncs.length = 0;
    const { stored, deps } = recording();
    const id = kf();
    const outcome = await pull(deps, { corpId: CORP, openKfId: id, owner: 'job-1', token: 'TOK', at: Date.now() });
    expect(outcome).toEqual({ action: 'pulled', pages: 2, messages: 3, late: 0 });
    expect(stored).toEqual([
      { id: 'm1', history: true },
      { id: 'm2', history: false },
      { id: 'm3', history: false },
    ]);
    expect(syncs).toMatchObject([{ token: 'TOK' }, { cursor: 'c1', token: 'TOK' }]);
    expect(await deps.state.view(CORP, id)).toMatchObject({ cursor: 'c2', pages: 0, puller: undefined });
  });

  it('a Token older than 9 minutes is not sent; a page saying "more" without a new cursor fails the job', async () => {
    pages = [{ next_cursor: '', has_more: 1, msg_list: [] }];
    syncs.length = 0;
    const deps = { kf: client, state: new PullState(redis), historyMaxAgeMs: 0, store: async () => {} };
    const request = { corpId: CORP, openKfId: kf(), owner: 'job-1', token: 'OLD', at: Date.now() - 10 * 60_000 };
    await expect(pull(deps, request)).rejects.toThrow(/has_more without a new cursor/);
    expect(syncs).toEqual([{ open_kfid: request.openKfId, limit: 1000 }]);
  });

  it('a first pull that fails after its first page still records the later pages’ old messages as history', async () => {
    const now = Math.floor(Date.now() / 1000);
    const old = now - 2 * 86_400;
    pages = [{ next_cursor: 'c1', has_more: 1, msg_list: [item(1, old)] }, { errcode: -1 }];
    const { stored, deps } = recording();
    const openKfId = kf();
    const request = { corpId: CORP, openKfId, owner: 'job-1', at: Date.now() };
    await expect(pull(deps, request)).rejects.toThrow(/^-1/);
    pages = [{ next_cursor: 'c2', has_more: 0, msg_list: [item(2, old), item(3, now)] }];
    expect(await pull(deps, request)).toMatchObject({ action: 'pulled' });
    expect(stored).toEqual([
      { id: 'm1', history: true },
      { id: 'm2', history: true },
      { id: 'm3', history: false },
    ]);
    // An empty page without a next_cursor keeps the cursor (else the next pull would be a first pull again).
    pages = [{ next_cursor: '', has_more: 0, msg_list: [] }];
    await pull(deps, { ...request, owner: 'job-2' });
    expect((await deps.state.view(CORP, openKfId)).cursor).toBe('c2');
  });

  it('counts as late the first round’s messages over a minute old; not a first pull’s, nor what a joined notice brought', async () => {
    const now = Math.floor(Date.now() / 1000);
    const state = new PullState(redis);
    const openKfId = kf();
    const request = { corpId: CORP, openKfId, owner: 'job-1', at: Date.now() };
    // A first pull (no cursor): what it gets may have been stored already (a reset cursor), so none is late.
    pages = [{ next_cursor: 'c0', has_more: 0, msg_list: [item(1, now - 7200), item(2, now - 120)] }];
    const first = { kf: client, state, historyMaxAgeMs: 300_000, store: async () => {} };
    expect(await pull(first, request)).toMatchObject({ messages: 2, late: 0 });
    // From the cursor: a notice joins while the first round stores, so the pull goes round once more.
    let joined = false;
    const store = async () => {
      if (!joined) await state.claim(CORP, openKfId, 'job-3', { at: Date.now() });
      joined = true;
    };
    pages = [
      { next_cursor: 'c1', has_more: 0, msg_list: [item(3, now - 120), item(4, now - 5)] },
      { next_cursor: 'c2', has_more: 0, msg_list: [item(5, now - 120)] },
    ];
    const outcome = await pull({ ...first, store }, { ...request, owner: 'job-2' });
    expect(outcome).toEqual({ action: 'pulled', pages: 2, messages: 3, late: 1 });
  });

  it('a failed pull lets go of the open_kfid: the next notice pulls at once', async () => {
    pages = [{ errcode: -1 }];
    const deps = { kf: client, state: new PullState(redis), historyMaxAgeMs: 0, store: async () => {} };
    const openKfId = kf();
    await expect(pull(deps, { corpId: CORP, openKfId, owner: 'job-1', at: Date.now() })).rejects.toThrow(/^-1/);
    expect((await deps.state.view(CORP, openKfId)).puller).toBeUndefined();
    pages = [{ next_cursor: 'c1', has_more: 0, msg_list: [] }];
    expect(await pull(deps, { corpId: CORP, openKfId, owner: 'job-2', at: Date.now() })).toMatchObject({
      action: 'pulled',
    });
  });

  it('a notice joins a live holder, and takes over from one whose job is gone', async () => {
    const state = new PullState(redis);
    const openKfId = kf();
    await state.claim(CORP, openKfId, 'job-dead', { at: 1 });
    pages = [{ next_cursor: 'c1', has_more: 0, msg_list: [] }];
    const deps = { kf: client, state, historyMaxAgeMs: 0, store: async () => {} };
    const request = { corpId: CORP, openKfId, owner: 'job-2', at: Date.now() };
    expect(await pull({ ...deps, holderGone: async () => false }, request)).toEqual({ action: 'joined' });
    const gone = async (holder: string) => holder === 'job-dead';
    expect(await pull({ ...deps, holderGone: gone }, request)).toMatchObject({ action: 'pulled', pages: 1 });
    expect(await state.view(CORP, openKfId)).toMatchObject({ cursor: 'c1', puller: undefined });
  });
});
