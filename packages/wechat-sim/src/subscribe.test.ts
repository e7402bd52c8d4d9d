import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Simulator } from './server.js';
import { popupEvent } from './subscribe.js';

const sim = new Simulator({
  accounts: [
    { appId: 'wxmp', appSecret: 'mp-secret', type: 'miniprogram' },
    { appId: 'wxoa', appSecret: 'oa-secret', type: 'officialaccount' },
  ],
});
let base = '';

async function json(method: 'GET' | 'POST', path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await request(`${base}${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  const parsed: unknown = await res.body.json();
  return typeof parsed === 'object' && parsed !== null ? { ...parsed } : {};
}
const token = async (appid: string, secret: string) =>
  String(
    (await json('GET', `/cgi-bin/token?grant_type=client_credential&appid=${appid}&secret=${secret}`)).access_token,
  );

const shipped = (touser: string, thing = '一件衬衫') => ({
  touser,
  template_id: 'SIM_TPL_ORDER_SHIPPED',
  data: { character_string1: { value: 'A-1001' }, thing2: { value: thing }, date3: { value: '2026年1月1日' } },
});

beforeAll(async () => {
  base = await sim.listen();
});
afterAll(() => sim.close());

describe('subscribe messages', () => {
  it('lists the templates, sends one message per accept, then answers 43101', async () => {
    const t = await token('wxmp', 'mp-secret');
    const list = await json('GET', `/wxaapi/newtmpl/gettemplate?access_token=${t}`);
    expect(list.data).toEqual(
      expect.arrayContaining([expect.objectContaining({ priTmplId: 'SIM_TPL_ORDER_SHIPPED' })]),
    );
    const send = (body: unknown) => json('POST', `/cgi-bin/message/subscribe/send?access_token=${t}`, body);
    expect(await send(shipped('o_u1'))).toMatchObject({ errcode: 43101 });
    sim.subscriptions.observe(
      'wxmp',
      popupEvent([{ templateId: 'SIM_TPL_ORDER_SHIPPED', status: 'accept' }], { fromUser: 'o_u1' }),
    );
    expect(await send(shipped('o_u1'))).toEqual({ errcode: 0, errmsg: 'ok' });
    expect(await send(shipped('o_u1'))).toMatchObject({ errcode: 43101 });
    expect(sim.subscriptions.sent.map((n) => n.templateId)).toEqual(['SIM_TPL_ORDER_SHIPPED']);
  });

  it("refuses what WeChat refuses: a value over its kind's limit, a missing page, an unknown template, the other kind of account", async () => {
    const t = await token('wxmp', 'mp-secret');
    await json('POST', '/__sim/subscriptions', {
      appId: 'wxmp',
      openid: 'o_u2',
      templateId: 'SIM_TPL_ORDER_SHIPPED',
      status: 'accept',
    });
    const send = (body: unknown) => json('POST', `/cgi-bin/message/subscribe/send?access_token=${t}`, body);
    expect(await send(shipped('o_u2', 'x'.repeat(21)))).toEqual({
      errcode: 47003,
      errmsg: 'argument invalid! data.thing2.value invalid',
    });
    expect(await send({ ...shipped('o_u2'), page: 'pages/missing/x' })).toMatchObject({ errcode: 41030 });
    expect(await send({ ...shipped('o_u2'), template_id: 'NOPE' })).toMatchObject({ errcode: 40037 });
    expect(await json('GET', '/__sim/subscriptions?appId=wxmp&openid=o_u2')).toEqual({ SIM_TPL_ORDER_SHIPPED: 1 });
    const oa = await token('wxoa', 'oa-secret');
    expect(await json('POST', `/cgi-bin/message/subscribe/send?access_token=${oa}`, shipped('o_u2'))).toMatchObject({
      errcode: 48001,
    });
  });

  it('sends an Official Account template message without a grant, with its msgid', async () => {
    const oa = await token('wxoa', 'oa-secret');
    const answer = await json('POST', `/cgi-bin/message/template/send?access_token=${oa}`, {
      touser: 'o_u3',
      template_id: 'SIM_OA_TPL_ORDER',
      url: 'https://example.com/order/1',
      data: {
        first: { value: 'Your order' },
        character_string1: { value: 'A-1' },
        thing2: { value: 'shipped' },
        remark: { value: 'thanks' },
      },
    });
    expect(answer).toMatchObject({ errcode: 0, msgid: expect.any(Number) });
  });
});
