import { createServer, type Server } from 'node:http';
import {
  DecryptError,
  decodeAesKey,
  decryptMessage,
  parseFields,
  parseMessage,
  SignatureError,
  verifyMsgSignature,
  verifySignature,
} from '@wx-kf/shared/wechat';
import { afterEach, describe, expect, it } from 'vitest';
import { buildPush, deliverPush, type Tamper, verifyUrl } from './push-client.js';
import { sampleMessage } from './samples.js';

const account = { appId: 'wx5823bf96d3bd56c7', token: 'tok', aesKey: 'jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C' };
const key = decodeAesKey(account.aesKey);

/** What a correct receiver does with a push; used here to check the client against the protocol core. */
function receive(push: ReturnType<typeof buildPush>) {
  verifySignature(account.token, push.query);
  const envelope = parseFields(push.body);
  if (push.query.encrypt_type !== 'aes') return parseMessage(push.body);
  verifyMsgSignature(account.token, push.query, envelope.Encrypt as string);
  return parseMessage(decryptMessage(key, envelope.Encrypt as string, account.appId));
}

let server: Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

async function serve(handler: (n: number) => { status: number; delayMs?: number }): Promise<string> {
  let n = 0;
  server = createServer((req, res) => {
    req.resume();
    const { status, delayMs = 0 } = handler(++n);
    setTimeout(() => res.writeHead(status).end(status === 200 ? 'success' : 'no'), delayMs);
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/wechat`;
}

describe('buildPush', () => {
  for (const mode of ['plain', 'compat', 'safe'] as const) {
    for (const format of ['xml', 'json'] as const) {
      it(`${mode} ${format} push is what a correct receiver accepts`, () => {
        const message = sampleMessage('text', { content: '你好 ]]> "q"' });
        const push = buildPush({ account, message, mode, format });
        expect(receive(push)).toEqual(message);
        expect(push.query.openid).toBe(message.FromUserName);
        if (mode === 'safe') expect(Object.keys(parseFields(push.body))).toEqual(['ToUserName', 'Encrypt']);
        if (mode === 'compat') expect(parseFields(push.body)).toMatchObject({ Content: '你好 ]]> "q"' });
      });
    }
  }

  it.each<[Tamper, string]>([
    ['signature', 'SignatureError'],
    ['msg_signature', 'SignatureError'],
    ['ciphertext', 'SignatureError'],
    ['appid', 'appid_mismatch'],
    ['key', 'DecryptError'],
    ['padding', 'bad_padding'],
  ])('a push tampered with %s is refused (%s)', (tamper, expected) => {
    const push = buildPush({ account, message: sampleMessage('text'), mode: 'safe', format: 'json', tamper });
    try {
      receive(push);
      expect.unreachable();
    } catch (error) {
      if (expected === 'SignatureError') expect(error).toBeInstanceOf(SignatureError);
      else if (expected === 'DecryptError') expect(error).toBeInstanceOf(DecryptError);
      else expect((error as DecryptError).reason).toBe(expected);
    }
  });
});

describe('deliverPush', () => {
  it('re-delivers like WeChat until the answer is accepted', async () => {
    const url = await serve((n) => ({ status: n < 3 ? 503 : 200 }));
    const deliveries = await deliverPush(url, buildPush({ account, message: sampleMessage('text') }), {
      maxDeliveries: 4,
    });
    expect(deliveries.map((d) => d.status)).toEqual([503, 503, 200]);
    expect(deliveries[2]?.body).toBe('success');
  });

  it('gives up a delivery after the timeout and stops after 4', async () => {
    const url = await serve(() => ({ status: 200, delayMs: 300 }));
    const deliveries = await deliverPush(url, buildPush({ account, message: sampleMessage('text') }), {
      maxDeliveries: 4,
      timeoutMs: 100,
    });
    expect(deliveries.map((d) => d.status)).toEqual(['timeout', 'timeout', 'timeout', 'timeout']);
  });

  it('verifies a URL with the GET handshake', async () => {
    const url = await serve(() => ({ status: 200 }));
    expect(await verifyUrl(url, account)).toEqual({ status: 200, body: 'success' });
  });
});
