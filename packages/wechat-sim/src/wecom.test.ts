import { FormData, request } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Simulator } from './server.js';
import type { WeComItem } from './wecom-log.js';

let clock = 1_700_000_000_000;
const CORP = 'wwsimcorp000001';
const KF = 'wkSIMkf00000000000000000000001';
const KF2 = 'wkSIMkf00000000000000000000002';
const AES = 'WeComSimulatorEncodingAESKeyForTests0000000';
const sim = new Simulator({
  accounts: [],
  now: () => clock,
  wecom: {
    corps: [
      {
        corpId: CORP,
        secret: 'kf-secret',
        token: 'cbToken',
        aesKey: AES,
        kfAccounts: [
          { openKfId: KF, name: 'Support' },
          { openKfId: KF2, name: 'Sales' },
        ],
        servicers: ['agent1', 'agent2'],
      },
    ],
  },
});
let base = '';
let accessToken = '';

type Answer = Record<string, unknown> & { errcode?: number };
async function json(method: 'GET' | 'POST', path: string, body?: unknown): Promise<Answer> {
  const res = await request(`${base}${path}`, {
    method,
    body: body === undefined ? undefined : JSON.stringify(body),
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
  });
  const text = await res.body.text();
  return text.startsWith('{') ? JSON.parse(text) : { status: res.statusCode, text };
}
const getToken = (corpId = CORP, secret = 'kf-secret') =>
  json('GET', `/cgi-bin/gettoken?corpid=${corpId}&corpsecret=${secret}`);
const kf = (path: string, body: unknown, token = accessToken) =>
  json('POST', `/cgi-bin/kf/${path}?access_token=${token}`, body);
const sync = (body: Record<string, unknown>, token = accessToken) => kf('sync_msg', { open_kfid: KF, ...body }, token);
const text = (touser: string, content: string, extra: Record<string, unknown> = {}) =>
  kf('send_msg', { touser, open_kfid: KF, msgtype: 'text', text: { content }, ...extra });
const customer = (externalUserId: string, content = 'hi') =>
  sim.wecom.customerMessage({ corpId: CORP, openKfId: KF, externalUserId, content });
const msgids = (answer: Answer) => (answer.msg_list as WeComItem[]).map((m) => m.msgid);

beforeAll(async () => {
  base = await sim.listen();
});
// Each test starts with a fresh access token (the reset forgets them), the request counted.
beforeEach(async () => {
  accessToken = String((await getToken()).access_token);
});
afterEach(() => sim.reset());
afterAll(() => sim.close());

describe('gettoken', () => {
  it('issues a 7200 s token, counts requests per corp, and refuses bad credentials', async () => {
    const answer = await getToken();
    expect(answer).toMatchObject({ errcode: 0, errmsg: 'ok', expires_in: 7200 });
    expect(typeof answer.access_token).toBe('string');
    expect(await getToken('wwnope')).toEqual({ errcode: 40013, errmsg: 'invalid corpid' });
    expect(await getToken(CORP, 'wrong')).toEqual({ errcode: 40001, errmsg: 'invalid secret' });
    expect(sim.wecom.tokenRequests.get(CORP)).toBe(3);
  });

  it('answers 41001 without a token, 40014 for an unknown one, 42001 once expired', async () => {
    const token = String((await getToken()).access_token);
    expect((await json('POST', '/cgi-bin/kf/sync_msg', { open_kfid: KF })).errcode).toBe(41001);
    expect((await sync({}, 'SIMWW_unknown')).errcode).toBe(40014);
    expect((await kf('sync_msg', { open_kfid: KF }, token)).errcode).toBe(0);
    clock += 7200_000;
    expect((await kf('sync_msg', { open_kfid: KF }, token)).errcode).toBe(42001);
  });
});

describe('kf/sync_msg', () => {
  it('pages 2 500 messages by 1 000 with has_more and cursors, none lost or repeated', async () => {
    const users = ['wm_a', 'wm_b', 'wm_c', 'wm_d', 'wm_e'];
    const added = sim.wecom.customerMessages(2500, { corpId: CORP, openKfId: KF, externalUserIds: users });
    const pages: Answer[] = [];
    let cursor: unknown;
    do {
      pages.push(await sync({ limit: 1000, ...(cursor ? { cursor } : {}) }));
      cursor = pages.at(-1)?.next_cursor;
    } while (pages.at(-1)?.has_more === 1);
    expect(pages.map((p) => (p.msg_list as unknown[]).length)).toEqual([1000, 1000, 500]);
    expect(pages.map((p) => p.has_more)).toEqual([1, 1, 0]);
    expect(pages.flatMap(msgids)).toEqual(added.map((m) => m.msgid));
    expect(added[0]?.msgid).toMatch(/^from_msgid_\d+$/);
    expect(/^\d+$/.test(String(cursor))).toBe(false);
    const empty = await sync({ cursor });
    expect(empty).toMatchObject({ errcode: 0, has_more: 0, msg_list: [] });
    expect(typeof empty.next_cursor).toBe('string');
    customer('wm_a', 'later');
    expect(msgids(await sync({ cursor: empty.next_cursor }))).toHaveLength(1);
    expect(sim.wecom.syncCallsByKf.get(KF)).toBe(5);
  });

  it('refuses cursors it did not hand out, a bad limit and an unknown open_kfid', async () => {
    customer('wm_a');
    const first = await sync({});
    expect((await sync({ cursor: 'c1000' })).errcode).toBe(95000);
    expect((await kf('sync_msg', { open_kfid: KF2, cursor: first.next_cursor })).errcode).toBe(95000);
    expect((await sync({ limit: 0 })).errcode).toBe(40058);
    expect((await sync({ limit: 1001 })).errcode).toBe(40058);
    expect((await kf('sync_msg', { open_kfid: 'wknope' })).errcode).toBe(95004);
  });

  it('never lists what the API sent, but lists servicers’ messages and events', async () => {
    const item = customer('wm_a');
    expect((await text('wm_a', 'an answer')).errcode).toBe(0);
    const agent = sim.wecom.agentMessage({ corpId: CORP, openKfId: KF, externalUserId: 'wm_a', content: 'hi' });
    const taken = sim.wecom.agentTakes(CORP, KF, 'wm_a', 'agent2');
    const answer = await sync({});
    expect(msgids(answer)).toEqual([item.msgid, agent.msgid, taken.msgid]);
    expect((answer.msg_list as WeComItem[]).map((m) => m.origin)).toEqual([3, 5, 4]);
    expect(taken.event).toMatchObject({ event_type: 'session_status_change', change_type: 1 });
  });

  it('starts without a cursor at the oldest message of the last 3 days', async () => {
    sim.wecom.history({ corpId: CORP, openKfId: KF, externalUserId: 'wm_a', daysAgo: 4, count: 3 });
    const recent = sim.wecom.history({ corpId: CORP, openKfId: KF, externalUserId: 'wm_a', daysAgo: 1, count: 2 });
    const now = customer('wm_b');
    expect(msgids(await sync({}))).toEqual([...recent, now].map((m) => m.msgid));
  });

  it('takes a fresh callback Token, refuses an 11-minute-old one, and counts calls without one', async () => {
    customer('wm_a');
    expect((await sync({ token: sim.wecom.issueToken(CORP) })).errcode).toBe(0);
    expect(await sync({ token: sim.wecom.issueToken(CORP, 11 * 60_000) })).toEqual({
      errcode: 95007,
      errmsg: 'invalid msg token',
    });
    expect((await sync({ token: 'ENCmadeup' })).errcode).toBe(95007);
    expect((await sync({})).errcode).toBe(0);
    expect(sim.wecom.syncsWithoutToken).toBe(1);
    expect(sim.wecom.syncCalls).toBe(4);
  });

  it('records how many pulls of one kf account overlapped', async () => {
    sim.slow({ path: '/cgi-bin/kf/sync_msg', fixedMs: 50 });
    await sync({});
    await sync({});
    expect(sim.wecom.maxConcurrentSyncs.get(KF)).toBe(1);
    await Promise.all([sync({}), sync({}), kf('sync_msg', { open_kfid: KF2 })]);
    expect(sim.wecom.maxConcurrentSyncs.get(KF)).toBe(2);
    expect(sim.wecom.maxConcurrentSyncs.get(KF2)).toBe(1);
  });

  it('plays fault rules on its path', async () => {
    sim.fail({ path: '/cgi-bin/kf/sync_msg', appId: CORP, script: [{ errcode: -1 }, { http: 503 }, 'ok'] });
    expect((await sync({})).errcode).toBe(-1);
    expect(await sync({})).toMatchObject({ status: 503 });
    expect((await sync({})).errcode).toBe(0);
    expect(sim.wecom.syncCalls).toBe(3);
  });
});

describe('kf/send_msg', () => {
  it('sends in state 0 and 1, refuses 95018 in 2, 3 and 4', async () => {
    customer('wm_a');
    expect(await text('wm_a', 'new session')).toMatchObject({ errcode: 0, msgid: expect.any(String) });
    expect(
      (await kf('service_state/trans', { open_kfid: KF, external_userid: 'wm_a', service_state: 1 })).errcode,
    ).toBe(0);
    expect((await text('wm_a', 'with the assistant')).errcode).toBe(0);
    await kf('service_state/trans', { open_kfid: KF, external_userid: 'wm_a', service_state: 2 });
    expect((await text('wm_a', 'queued')).errcode).toBe(95018);
    sim.wecom.agentTakes(CORP, KF, 'wm_a');
    expect((await text('wm_a', 'with a person')).errcode).toBe(95018);
    sim.wecom.agentEnds(CORP, KF, 'wm_a');
    expect((await text('wm_a', 'ended')).errcode).toBe(95018);
    customer('wm_a', 'back again');
    expect(sim.wecom.state(CORP, KF, 'wm_a').service_state).toBe(0);
    expect((await text('wm_a', 'new session again')).errcode).toBe(0);
    expect(sim.wecom.sentTo(CORP, 'wm_a').map((m) => m.body.text)).toEqual([
      { content: 'new session' },
      { content: 'with the assistant' },
      { content: 'new session again' },
    ]);
  });

  it('allows 5 messages after the customer’s last one, within 48 h (95001 otherwise)', async () => {
    expect((await text('wm_a', 'never wrote')).errcode).toBe(95001);
    customer('wm_a');
    for (let i = 1; i <= 5; i++) expect((await text('wm_a', `answer ${i}`)).errcode).toBe(0);
    expect(await text('wm_a', 'sixth')).toEqual({ errcode: 95001, errmsg: 'send msg count limit' });
    customer('wm_a', 'again');
    expect((await text('wm_a', 'window reopened')).errcode).toBe(0);
    clock += 48 * 3600_000;
    accessToken = String((await getToken()).access_token);
    expect((await text('wm_a', 'too late')).errcode).toBe(95001);
  });

  it('delivers a msgid once: a repeat answers 0 with it and is counted, not sent', async () => {
    customer('wm_a');
    const first = await text('wm_a', 'once', { msgid: 'job-42-part-1' });
    const again = await text('wm_a', 'once', { msgid: 'job-42-part-1' });
    expect(first).toEqual({ errcode: 0, errmsg: 'ok', msgid: 'job-42-part-1' });
    expect(again).toEqual(first);
    expect(sim.wecom.sentTo(CORP)).toHaveLength(1);
    expect(sim.wecom.duplicateSends).toBe(1);
  });

  it('checks the message: type, empty or over-long text, msgid, open_kfid', async () => {
    customer('wm_a');
    expect((await kf('send_msg', { touser: 'wm_a', open_kfid: KF, msgtype: 'news' })).errcode).toBe(40008);
    expect((await text('wm_a', '')).errcode).toBe(44004);
    expect((await text('wm_a', '字'.repeat(683))).errcode).toBe(40058);
    expect((await text('wm_a', '字'.repeat(682))).errcode).toBe(0);
    expect((await text('wm_a', 'x', { msgid: 'not ok!' })).errcode).toBe(40058);
    expect((await text('wm_a', 'x', { open_kfid: 'wknope' })).errcode).toBe(95004);
  });

  it('sends media the corp uploaded with its token (media/upload), and refuses any other media_id with 40007', async () => {
    customer('wm_a');
    const upload = async (type: string, token = accessToken) => {
      const form = new FormData();
      form.append('media', new Blob([Buffer.from('PNGDATA')]), 'a.png');
      const url = `${base}/cgi-bin/media/upload?access_token=${token}&type=${type}`;
      return (await (await request(url, { method: 'POST', body: form })).body.json()) as Answer;
    };
    const image = (mediaId: string) => ({
      touser: 'wm_a',
      open_kfid: KF,
      msgtype: 'image',
      image: { media_id: mediaId },
    });
    expect((await kf('send_msg', image('MEDIA'))).errcode).toBe(40007);
    const uploaded = await upload('image');
    expect(uploaded).toMatchObject({ type: 'image', media_id: expect.any(String) });
    expect((await upload('file')).type).toBe('file'); // WeCom's type; WeChat's `thumb` is not one
    expect((await upload('thumb')).errcode).toBe(40004);
    expect((await kf('send_msg', image(String(uploaded.media_id)))).errcode).toBe(0);
    clock += 3 * 24 * 3600_000; // WeCom keeps temporary media 3 days
    customer('wm_a');
    const fresh = String((await getToken()).access_token);
    expect((await kf('send_msg', image(String(uploaded.media_id)), fresh)).errcode).toBe(40007);
  });
});

describe('kf/send_msg_on_event', () => {
  it('takes a welcome_code once, within 20 s, outside the 5-message window', async () => {
    const { item, welcomeCode } = sim.wecom.enterSession({
      corpId: CORP,
      openKfId: KF,
      externalUserId: 'wm_a',
      scene: 'qr',
    });
    expect(item.event).toMatchObject({ event_type: 'enter_session', scene: 'qr', welcome_code: welcomeCode });
    const welcome = { code: welcomeCode, msgtype: 'text', text: { content: 'welcome' } };
    expect(await kf('send_msg_on_event', welcome)).toMatchObject({ errcode: 0, msgid: expect.any(String) });
    expect((await kf('send_msg_on_event', welcome)).errcode).toBe(95019);
    const late = sim.wecom.enterSession({ corpId: CORP, openKfId: KF, externalUserId: 'wm_a' }).welcomeCode;
    clock += 21_000;
    expect((await kf('send_msg_on_event', { ...welcome, code: late })).errcode).toBe(95019);
    expect(sim.wecom.sentTo(CORP, 'wm_a')).toMatchObject([{ openKfId: KF, viaEvent: true, msgtype: 'text' }]);
    customer('wm_a');
    for (let i = 1; i <= 5; i++) expect((await text('wm_a', `answer ${i}`)).errcode).toBe(0);
  });
});

describe('kf/service_state and kf/account/list', () => {
  const trans = (state: number, servicer?: string) =>
    kf('service_state/trans', {
      open_kfid: KF,
      external_userid: 'wm_a',
      service_state: state,
      ...(servicer ? { servicer_userid: servicer } : {}),
    });
  const get = () => kf('service_state/get', { open_kfid: KF, external_userid: 'wm_a' });

  it('allows WeCom’s moves and refuses the rest with 95016', async () => {
    customer('wm_a');
    expect(await get()).toEqual({ errcode: 0, errmsg: 'ok', service_state: 0, servicer_userid: '' });
    expect((await trans(3)).errcode).toBe(60111);
    expect((await trans(3, 'nobody')).errcode).toBe(60111);
    expect(await trans(3, 'agent1')).toMatchObject({ errcode: 0, msg_code: expect.any(String) });
    expect(await get()).toMatchObject({ service_state: 3, servicer_userid: 'agent1' });
    expect((await trans(1)).errcode).toBe(95016);
    expect((await trans(3, 'agent1')).errcode).toBe(95016);
    expect((await trans(3, 'agent2')).errcode).toBe(0);
    expect((await trans(4)).errcode).toBe(0);
    expect((await trans(2)).errcode).toBe(95016);
    expect((await trans(7)).errcode).toBe(40058);
    expect(sim.wecom.transCalls.map((c) => [c.from, c.to, c.errcode])).toEqual([
      [0, 3, 60111],
      [0, 3, 60111],
      [0, 3, 0],
      [3, 1, 95016],
      [3, 3, 95016],
      [3, 3, 0],
      [3, 4, 0],
      [4, 2, 95016],
    ]);
  });

  it('lists the corp’s kf accounts', async () => {
    expect(await kf('account/list', { offset: 0, limit: 100 })).toEqual({
      errcode: 0,
      errmsg: 'ok',
      account_list: [
        { open_kfid: KF, name: 'Support', avatar: '', manage_privilege: true },
        { open_kfid: KF2, name: 'Sales', avatar: '', manage_privilege: true },
      ],
    });
    expect((await kf('account/list', { offset: 1, limit: 1 })).account_list).toHaveLength(1);
  });
});

describe('control routes', () => {
  it('queue a customer message and hand the Token its notice carries', async () => {
    const answer = await json('POST', '/__sim/wecom/customer-message', { content: 'from the CLI' });
    expect(answer.item).toMatchObject({ open_kfid: KF, external_userid: 'wm_sim_customer_0001', origin: 3 });
    const page = await sync({ token: answer.token });
    expect((page.msg_list as WeComItem[])[0]).toMatchObject({ text: { content: 'from the CLI' } });
    expect(await json('GET', '/__sim/wecom/stats')).toMatchObject({ syncCalls: 1, syncsWithoutToken: 0 });
    expect(await json('GET', `/__sim/wecom/state?externalUserId=wm_sim_customer_0001`)).toEqual({
      service_state: 0,
      servicer_userid: '',
    });
    expect(await json('POST', '/__sim/wecom/customer-message', { corpId: 'wwnope' })).toHaveProperty('error');
  });
});
