import { FormData, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Simulator } from './server.js';

let clock = 1_700_000_000_000;
const sim = new Simulator({
  accounts: [
    { appId: 'wxmp', appSecret: 'mp-secret', type: 'miniprogram' },
    { appId: 'wxoa', appSecret: 'oa-secret', type: 'officialaccount' },
  ],
  now: () => clock,
});
let base = '';

async function call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await request(`${base}${path}`, {
    method,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
  });
  const text = await res.body.text();
  return {
    status: res.statusCode,
    ...(text.startsWith('{') || text.startsWith('[') ? { json: JSON.parse(text) } : { text }),
  };
}
const json = async (method: 'GET' | 'POST', path: string, body?: unknown) =>
  (await call(method, path, body)).json as Record<string, unknown>;

const classic = async (appId = 'wxmp', secret = 'mp-secret') =>
  json('GET', `/cgi-bin/token?grant_type=client_credential&appid=${appId}&secret=${secret}`);
const stable = async (appId = 'wxmp', forceRefresh = false, secret = 'mp-secret') =>
  json('POST', '/cgi-bin/stable_token', {
    grant_type: 'client_credential',
    appid: appId,
    secret,
    force_refresh: forceRefresh,
  });
const send = async (token: unknown, body: unknown) =>
  json('POST', `/cgi-bin/message/custom/send?access_token=${token}`, body);
const text = (touser: string, content: string) => ({ touser, msgtype: 'text', text: { content } });

beforeAll(async () => {
  base = await sim.listen();
});
afterEach(() => sim.reset());
afterAll(() => sim.close());

describe('cgi-bin/token', () => {
  it('issues a 7200 s token and counts the request', async () => {
    const res = await classic();
    expect(res).toMatchObject({ expires_in: 7200 });
    expect(await send(res.access_token, text('o1', 'hi'))).toEqual({ errcode: 0, errmsg: 'ok' });
    expect(sim.state.tokenRequestCount('wxmp')).toBe(1);
  });

  it('replaces the previous token, which works only during the 5-minute overlap', async () => {
    const first = (await classic()).access_token;
    const second = (await classic()).access_token;
    expect(second).not.toBe(first);
    expect((await send(first, text('o1', 'still ok'))).errcode).toBe(0);
    clock += 300_000;
    expect((await send(first, text('o1', 'too late'))).errcode).toBe(40001);
    expect((await send(second, text('o1', 'fine'))).errcode).toBe(0);
  });

  it('expires a token after 7200 s with 42001', async () => {
    const token = (await classic()).access_token;
    clock += 7200_000;
    expect((await send(token, text('o1', 'x'))).errcode).toBe(42001);
  });

  it('answers 40013 for an unknown AppID and 40125 for a wrong secret', async () => {
    expect((await classic('wxnope')).errcode).toBe(40013);
    expect((await classic('wxmp', 'wrong')).errcode).toBe(40125);
    expect((await json('GET', '/cgi-bin/token?appid=wxmp&secret=mp-secret')).errcode).toBe(40002);
  });
});

describe('cgi-bin/stable_token', () => {
  it('returns the same token while it has more than 5 minutes left, then rotates', async () => {
    const a = await stable();
    const b = await stable();
    expect(b.access_token).toBe(a.access_token);
    clock += 7200_000 - 300_000;
    const c = await stable();
    expect(c.access_token).not.toBe(a.access_token);
    expect((await send(a.access_token, text('o1', 'old still valid'))).errcode).toBe(0);
    expect(sim.state.tokenRequests.get('wxmp')).toEqual({ classic: 0, stable: 3 });
  });

  it('force_refresh invalidates the old token at once', async () => {
    const a = await stable();
    const b = await stable('wxmp', true);
    expect(b.access_token).not.toBe(a.access_token);
    expect((await send(a.access_token, text('o1', 'x'))).errcode).toBe(40001);
  });

  it('is isolated from cgi-bin/token', async () => {
    const s = await stable();
    await classic();
    await classic();
    clock += 300_001;
    expect((await send(s.access_token, text('o1', 'x'))).errcode).toBe(0);
  });

  it('rejects a bad body and bad credentials', async () => {
    expect((await json('POST', '/cgi-bin/stable_token', 'not json')).errcode).toBe(47001);
    expect((await stable('wxmp', false, 'wrong')).errcode).toBe(40125);
  });
});

describe('custom/send', () => {
  it('answers 41001 without a token and 40001 for an unknown one', async () => {
    expect((await json('POST', '/cgi-bin/message/custom/send', text('o1', 'x'))).errcode).toBe(41001);
    expect((await send('nope', text('o1', 'x'))).errcode).toBe(40001);
  });

  it('records accepted messages in order', async () => {
    const token = (await stable()).access_token;
    for (const n of ['1', '2', '3']) expect((await send(token, text('o1', n))).errcode).toBe(0);
    expect(sim.state.messagesFor('wxmp', 'o1').map((m) => (m.body.text as { content: string }).content)).toEqual([
      '1',
      '2',
      '3',
    ]);
    const listed = await call('GET', '/__sim/messages?appId=wxmp');
    expect(listed.json).toHaveLength(3);
  });

  it('validates the body against the account kind', async () => {
    const mp = (await stable()).access_token;
    const oa = (await stable('wxoa', false, 'oa-secret')).access_token;
    const news = { touser: 'o1', msgtype: 'news', news: { articles: [{ title: 't', url: 'https://e.com' }] } };
    expect((await send(mp, news)).errcode).toBe(40008);
    expect((await send(oa, news)).errcode).toBe(0);
    const twoArticles = { ...news, news: { articles: [news.news.articles[0], news.news.articles[0]] } };
    expect((await send(oa, twoArticles)).errcode).toBe(45008);
    expect((await send(mp, { touser: 'o1', msgtype: 'text', text: {} })).errcode).toBe(47001);
    expect((await send(mp, '{bad json')).errcode).toBe(47001);
    expect((await send(mp, { msgtype: 'text', text: { content: 'x' } })).errcode).toBe(40003);
    expect(sim.state.messages).toHaveLength(1);
  });

  it('enforces the send windows when asked', async () => {
    const windowed = new Simulator({
      accounts: [{ appId: 'wxw', appSecret: 's', type: 'miniprogram' }],
      sendWindows: true,
      now: () => clock,
    });
    const url = await windowed.listen();
    try {
      const token = (await (
        await request(`${url}/cgi-bin/token?grant_type=client_credential&appid=wxw&secret=s`)
      ).body.json()) as { access_token: string };
      const sendW = async () =>
        (
          (await (
            await request(`${url}/cgi-bin/message/custom/send?access_token=${token.access_token}`, {
              method: 'POST',
              body: JSON.stringify(text('u', 'x')),
            })
          ).body.json()) as { errcode: number }
        ).errcode;
      expect(await sendW()).toBe(45015);
      windowed.state.userActed('wxw', 'u', 'enter_session');
      expect([await sendW(), await sendW(), await sendW()]).toEqual([0, 0, 45047]);
      windowed.state.userActed('wxw', 'u', 'message');
      const five = [];
      for (let i = 0; i < 6; i++) five.push(await sendW());
      expect(five).toEqual([0, 0, 0, 0, 0, 45047]);
      clock += 48 * 3600_000;
      token.access_token = (
        (await (await request(`${url}/cgi-bin/token?grant_type=client_credential&appid=wxw&secret=s`)).body.json()) as {
          access_token: string;
        }
      ).access_token;
      expect(await sendW()).toBe(45015);
      // Over HTTP, an action the simulator does not know (even an inherited name) counts as a message.
      for (const action of ['toString', 'nonsense']) {
        const res = await request(`${url}/__sim/users/activity`, {
          method: 'POST',
          body: JSON.stringify({ appId: 'wxw', openid: action, action }),
        });
        expect(res.statusCode).toBe(200);
        await res.body.dump();
        expect(windowed.state.windowOf('wxw', action)).toEqual({ until: clock + 48 * 3600_000, left: 5 });
      }
    } finally {
      await windowed.close();
    }
  });
});

describe('typing and media', () => {
  it('sets typing and rejects a bad command with 45072', async () => {
    const token = (await stable()).access_token;
    expect(
      await json('POST', `/cgi-bin/message/custom/typing?access_token=${token}`, { touser: 'o1', command: 'Typing' }),
    ).toEqual({ errcode: 0, errmsg: 'ok' });
    expect(
      (await json('POST', `/cgi-bin/message/custom/typing?access_token=${token}`, { touser: 'o1', command: 'Dance' }))
        .errcode,
    ).toBe(45072);
    expect(sim.state.typing).toHaveLength(1);
  });

  it('uploads media, serves it back, and forgets it after 3 days', async () => {
    const token = (await stable()).access_token;
    const form = new FormData();
    form.append('media', new Blob([Buffer.from('PNGDATA')]), 'qr.png');
    const res = await request(`${base}/cgi-bin/media/upload?access_token=${token}&type=image`, {
      method: 'POST',
      body: form,
    });
    const uploaded = (await res.body.json()) as { media_id: string; type: string };
    expect(uploaded.type).toBe('image');
    const got = await request(`${base}/cgi-bin/media/get?access_token=${token}&media_id=${uploaded.media_id}`);
    expect(Buffer.from(await got.body.arrayBuffer()).toString()).toBe('PNGDATA');
    clock += 3 * 24 * 3600_000;
    const freshToken = (await stable()).access_token;
    expect(
      (await json('GET', `/cgi-bin/media/get?access_token=${freshToken}&media_id=${uploaded.media_id}`)).errcode,
    ).toBe(40007);
  });
});

describe('fault injection', () => {
  it('plays a scripted sequence, then answers normally', async () => {
    const token = (await stable()).access_token;
    sim.fail({
      path: '/cgi-bin/message/custom/send',
      appId: 'wxmp',
      script: [{ errcode: -1 }, { errcode: 45011 }, { http: 503 }, { drop: true }, { delayMs: 50 }, 'ok'],
    });
    const results: unknown[] = [];
    for (let i = 0; i < 7; i++) {
      try {
        const r = await call('POST', `/cgi-bin/message/custom/send?access_token=${token}`, text('o1', String(i)));
        results.push(r.json ? (r.json as { errcode: number }).errcode : r.status);
      } catch (error) {
        results.push((error as { code?: string }).code ?? 'error');
      }
    }
    expect(results).toEqual([-1, 45011, 503, 'UND_ERR_SOCKET', 0, 0, 0]);
    expect(sim.state.messages.map((m) => (m.body.text as { content: string }).content)).toEqual(['4', '5', '6']);
  });

  it('hangs a call until the client gives up, and closes with one hung', async () => {
    sim.fail({ path: '/cgi-bin/stable_token', script: [{ hang: true }] });
    const started = performance.now();
    await expect(
      request(`${base}/cgi-bin/stable_token`, { method: 'POST', body: '{}', headersTimeout: 150 }),
    ).rejects.toMatchObject({ code: 'UND_ERR_HEADERS_TIMEOUT' });
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect((await stable()).access_token).toBeDefined();

    const own = new Simulator({ accounts: [] });
    const url = await own.listen();
    own.fail({ path: '/cgi-bin/token', script: [{ hang: true }] });
    const hung = request(`${url}/cgi-bin/token?appid=wxhung`).catch((e: unknown) => e);
    while (own.state.tokenRequestCount('wxhung') === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    await own.close();
    expect(await hung).toMatchObject({ code: 'UND_ERR_SOCKET' });
  });

  it('scopes a fault to one account', async () => {
    sim.fail({ path: '/cgi-bin/stable_token', appId: 'wxoa', script: [{ errcode: 45009 }] });
    expect((await stable()).errcode).toBeUndefined();
    expect((await stable('wxoa', false, 'oa-secret')).errcode).toBe(45009);
  });

  it('repeats a seeded random failure pattern exactly', async () => {
    const run = async () => {
      sim.reset();
      const token = (await stable()).access_token;
      sim.fail({
        path: '/cgi-bin/message/custom/send',
        rate: 0.3,
        seed: 7,
        faults: [{ errcode: -1 }, { errcode: 45011 }],
      });
      const codes = [];
      for (let i = 0; i < 40; i++) codes.push((await send(token, text('o1', 'x'))).errcode);
      return codes;
    };
    const first = await run();
    expect(await run()).toEqual(first);
    const failures = first.filter((c) => c !== 0).length;
    expect(failures).toBeGreaterThan(4);
    expect(failures).toBeLessThan(24);
  });

  it('adds latency and takes rules over HTTP', async () => {
    expect((await call('POST', '/__sim/latency', { path: '/cgi-bin/stable_token', fixedMs: 120 })).status).toBe(200);
    const started = performance.now();
    await stable();
    expect(performance.now() - started).toBeGreaterThanOrEqual(110);
    expect(
      (
        await call('POST', '/__sim/faults', {
          path: '/cgi-bin/token',
          script: [{ errcode: 40164, errmsg: 'invalid ip 1.2.3.4' }],
        })
      ).status,
    ).toBe(200);
    expect(await classic()).toEqual({ errcode: 40164, errmsg: 'invalid ip 1.2.3.4' });
    expect((await call('POST', '/__sim/faults', { script: [] })).status).toBe(400);
    await call('POST', '/__sim/reset');
    expect(await json('GET', '/__sim/state')).toMatchObject({ messages: 0, tokenRequests: {} });
  });
});

describe('msg_sec_check (version 2)', () => {
  const check = async (appId: string, body: object) => {
    const { access_token } = appId === 'wxmp' ? await classic() : await classic('wxoa', 'oa-secret');
    return json('POST', `/wxa/msg_sec_check?access_token=${access_token}`, body);
  };

  it('gives a deterministic verdict by marker, records each call, and answers argument errors as WeChat does', async () => {
    const base = { version: 2, scene: 2, openid: 'o_check' };
    expect(await check('wxmp', { ...base, content: 'hello' })).toMatchObject({
      errcode: 0,
      result: { suggest: 'pass', label: 100 },
    });
    expect((await check('wxmp', { ...base, content: 'x #risky y' })).result).toEqual({
      suggest: 'risky',
      label: 20001,
    });
    expect((await check('wxmp', { ...base, content: '#review' })).result).toMatchObject({ suggest: 'review' });
    expect(sim.secChecks.map((c) => c.suggest)).toEqual(['pass', 'risky', 'review']);
    expect((await check('wxmp', { ...base, version: 1, content: 'x' })).errcode).toBe(47001);
    expect((await check('wxmp', { ...base, scene: 9, content: 'x' })).errcode).toBe(40129);
    expect((await check('wxmp', { ...base, content: '' })).errcode).toBe(44002);
    expect((await check('wxoa', { ...base, content: 'x' })).errcode).toBe(48001);
  });
});
