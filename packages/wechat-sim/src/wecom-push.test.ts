import { createServer, type IncomingMessage } from 'node:http';
import { computeMsgSignature, decodeAesKey, decryptMessage, parseFields } from '@wx-kf/shared/wechat';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Simulator } from './server.js';

const CORP = 'wwsimcorp000001';
const KF = 'wkSIMkf00000000000000000000001';
const AES = 'WeComSimulatorEncodingAESKeyForTests0000000';
const corp = {
  corpId: CORP,
  secret: 's',
  token: 'cbToken',
  aesKey: AES,
  kfAccounts: [{ openKfId: KF, name: 'Support' }],
};
const sim = new Simulator({ accounts: [], wecom: { corps: [corp] } });

/** A stand-in ingress: records each request, answers `success`, or echoes the decrypted echostr for a GET. */
const received: { url: URL; method: string; body: string }[] = [];
const readBody = async (req: IncomingMessage) => {
  let body = '';
  for await (const chunk of req) body += chunk;
  return body;
};
const ingress = createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://ingress');
  received.push({ url, method: req.method ?? '', body: await readBody(req) });
  const echostr = url.searchParams.get('echostr');
  res.end(echostr ? decryptMessage(decodeAesKey(AES), echostr, CORP) : 'success');
});
let ingressUrl = '';

beforeAll(async () => {
  await new Promise<void>((resolve) => ingress.listen(0, '127.0.0.1', resolve));
  const address = ingress.address();
  ingressUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});
afterEach(() => {
  received.length = 0;
  sim.reset();
});
afterAll(async () => {
  await new Promise((resolve) => ingress.close(resolve));
  await sim.close();
});

describe('the kf_msg_or_event callback', () => {
  it('is encrypted for the corp, signed with its Token, and carries a sync Token sync_msg accepts', async () => {
    const answer = await sim.wecom.notify(ingressUrl, CORP, KF);
    expect(answer).toMatchObject({ status: 200, body: 'success' });
    const [call] = received;
    if (!call) throw new Error('no callback received');
    expect(call.url.pathname).toBe(`/wechat/${CORP}`);
    expect(call.url.searchParams.has('encrypt_type')).toBe(false);
    const encrypt = String(parseFields(call.body).Encrypt);
    const { timestamp, nonce } = Object.fromEntries(call.url.searchParams);
    expect(call.url.searchParams.get('msg_signature')).toBe(
      computeMsgSignature('cbToken', String(timestamp), String(nonce), encrypt),
    );
    const inner = parseFields(decryptMessage(decodeAesKey(AES), encrypt, CORP));
    expect(inner).toMatchObject({
      ToUserName: CORP,
      MsgType: 'event',
      Event: 'kf_msg_or_event',
      Token: answer.token,
      OpenKfId: KF,
    });
    expect(sim.wecom.validSyncToken(CORP, answer.token)).toBe(true);
  });

  it('sends the same notice again with the same Token, or an old Token when asked', async () => {
    const answer = await sim.wecom.notify(ingressUrl, CORP, KF, { times: 3 });
    expect(answer.deliveries).toHaveLength(3);
    const tokens = received.map((r) => {
      const encrypt = String(parseFields(r.body).Encrypt);
      return parseFields(decryptMessage(decodeAesKey(AES), encrypt, CORP)).Token;
    });
    expect(tokens).toEqual([answer.token, answer.token, answer.token]);
    const old = await sim.wecom.notify(ingressUrl, CORP, KF, { tokenAgeMs: 11 * 60_000 });
    expect(sim.wecom.validSyncToken(CORP, old.token)).toBe(false);
  });

  it('verifies the URL with an encrypted echostr', async () => {
    const answer = await sim.wecom.verifyUrl(ingressUrl, CORP);
    expect(answer.status).toBe(200);
    expect(answer.body).toBe(answer.expected);
    const [call] = received;
    const echostr = String(call?.url.searchParams.get('echostr'));
    const { timestamp, nonce } = Object.fromEntries(call?.url.searchParams ?? []);
    expect(call?.url.searchParams.get('msg_signature')).toBe(
      computeMsgSignature('cbToken', String(timestamp), String(nonce), echostr),
    );
  });
});
