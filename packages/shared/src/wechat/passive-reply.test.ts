import { describe, expect, it } from 'vitest';
import { parseFields } from './body.js';
import { decodeAesKey, decryptMessage } from './crypto.js';
import { parseMessage } from './message.js';
import { buildTransferReply, SUCCESS, sealReply } from './passive-reply.js';
import { verifyMsgSignature } from './signature.js';

const push = parseMessage(
  '{"ToUserName":"gh_97417a04a28d","FromUserName":"o_user","CreateTime":1714112445,"MsgType":"text","Content":"人工","MsgId":1}',
);
const now = 1_714_112_500_000;

describe('answers', () => {
  it('acknowledges with the bare word success', () => {
    expect(SUCCESS).toBe('success');
  });

  it('builds transfer_customer_service in XML with To/From swapped', () => {
    const xml = buildTransferReply(push, 'xml', { now });
    expect(parseFields(xml)).toEqual({
      ToUserName: 'o_user',
      FromUserName: 'gh_97417a04a28d',
      CreateTime: '1714112500',
      MsgType: 'transfer_customer_service',
    });
  });

  it('builds transfer_customer_service in JSON with a chosen agent', () => {
    const json = JSON.parse(buildTransferReply(push, 'json', { now, kfAccount: 'test1@test' }));
    expect(json).toEqual({
      ToUserName: 'o_user',
      FromUserName: 'gh_97417a04a28d',
      CreateTime: 1714112500,
      MsgType: 'transfer_customer_service',
      TransInfo: { KfAccount: 'test1@test' },
    });
    expect(parseFields(buildTransferReply(push, 'xml', { kfAccount: 'a]]>b' })).TransInfo).toEqual({
      KfAccount: 'a]]>b',
    });
  });

  it.each(['xml', 'json'] as const)('seals a %s reply that WeChat can verify and decrypt', (format) => {
    const key = decodeAesKey('jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C');
    const inner = buildTransferReply(push, format, { now });
    const sealed = sealReply(inner, format, { token: 'tok', key, appId: 'wx5823bf96d3bd56c7', nonce: 'n-1' });
    const env = parseFields(sealed);
    expect(Object.keys(env)).toEqual(['Encrypt', 'MsgSignature', 'TimeStamp', 'Nonce']);
    expect(env.Nonce).toBe('n-1');
    const encrypt = env.Encrypt as string;
    const q = { msg_signature: env.MsgSignature as string, timestamp: env.TimeStamp as string, nonce: 'n-1' };
    expect(() => verifyMsgSignature('tok', q, encrypt)).not.toThrow();
    expect(decryptMessage(key, encrypt, 'wx5823bf96d3bd56c7')).toBe(inner);
    expect(Math.abs(Number(env.TimeStamp) - Date.now() / 1000)).toBeLessThan(5);
  });

  it('refuses a timestamp that is not unix seconds', () => {
    const key = decodeAesKey('A'.repeat(43));
    expect(() => sealReply('x', 'json', { token: 't', key, appId: 'a', nonce: 'n', timestamp: 'now' })).toThrow(
      RangeError,
    );
  });
});
