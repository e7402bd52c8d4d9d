import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../config/errors.js';
import type { InboundMessage } from '../wechat/message.js';
import { ReplyRules } from './index.js';

const base = { ToUserName: 'gh_1', FromUserName: 'o_user', CreateTime: '1714112445' };
const text = (Content: string) => ({ ...base, MsgType: 'text', Content, MsgId: '1' }) as InboundMessage;
const event = (Event: string, EventKey?: string) => ({ ...base, MsgType: 'event', Event, EventKey }) as InboundMessage;
const say = (content: string) => [{ msgtype: 'text', text: { content } }];

// The example from the architecture contract.
const contract = {
  rules: [
    { when: { msgType: 'text', contains: '人工' }, transfer: { kfAccount: 'optional@account' } },
    { when: { msgType: 'text', equals: 'hello' }, reply: say('hi') },
    { when: { msgType: 'text', regex: '^order\\s+(\\d+)$' }, reply: say('order {{match.1}}') },
    { when: { msgType: 'image' }, reply: [{ msgtype: 'image', image: { file: './assets/qr.png' } }] },
    { when: { event: 'user_enter_tempsession' }, reply: say('欢迎') },
  ],
  fallback: say('收到：{{Content}}'),
};
const rules = ReplyRules.from(contract, 'miniprogram');

describe('ReplyRules', () => {
  it('transfers on contains', () => {
    expect(rules.decide(text('我要人工服务'))).toEqual({ kind: 'transfer', kfAccount: 'optional@account' });
    expect(rules.transfers).toBe(true);
  });

  it('replies on equals, and only on an exact match', () => {
    expect(rules.decide(text('hello'))).toEqual({ kind: 'reply', replies: say('hi') });
    expect(rules.decide(text('hello!'))).toEqual({ kind: 'reply', replies: say('收到：hello!') });
  });

  it('fills regex groups', () => {
    expect(rules.decide(text('order 42'))).toEqual({ kind: 'reply', replies: say('order 42') });
  });

  it('matches by message type and keeps file media for the worker to upload', () => {
    const image = { ...base, MsgType: 'image', MediaId: 'm', MsgId: '2' } as InboundMessage;
    expect(rules.decide(image)).toEqual({
      kind: 'reply',
      replies: [{ msgtype: 'image', image: { file: './assets/qr.png' } }],
    });
  });

  it('matches events by name and key', () => {
    expect(rules.decide(event('user_enter_tempsession'))).toEqual({ kind: 'reply', replies: say('欢迎') });
    const byKey = ReplyRules.from(
      { rules: [{ when: { event: 'CLICK', eventKey: 'HELP' }, reply: say('help') }] },
      'officialaccount',
    );
    expect(byKey.decide(event('CLICK', 'HELP')).kind).toBe('reply');
    expect(byKey.decide(event('CLICK', 'OTHER')).kind).toBe('none');
  });

  it('never transfers an event, even when a rule would match it', () => {
    const r = ReplyRules.from(
      { rules: [{ when: { contains: 'x' }, transfer: true }], fallback: say('f') },
      'miniprogram',
    );
    expect(r.decide({ ...event('CLICK'), Content: 'x' } as InboundMessage)).toEqual({
      kind: 'reply',
      replies: say('f'),
    });
    expect(() => ReplyRules.from({ rules: [{ when: { event: 'subscribe' }, transfer: true }] }, 'miniprogram')).toThrow(
      'events cannot be transferred',
    );
  });

  it('fills templates from any field, and empties unknown ones', () => {
    const r = ReplyRules.from(
      { rules: [], fallback: say('{{FromUserName}} sent {{MsgType}}{{Nope}} at {{ CreateTime }}') },
      'miniprogram',
    );
    expect(r.decide(text('x'))).toEqual({ kind: 'reply', replies: say('o_user sent text at 1714112445') });
  });

  it('does nothing without a match or fallback', () => {
    expect(ReplyRules.none.decide(text('x'))).toEqual({ kind: 'none' });
  });

  it('rejects replies the account kind cannot send', () => {
    const oaOnly = { rules: [{ when: { msgType: 'text' }, reply: [{ msgtype: 'wxcard', wxcard: { card_id: 'c' } }] }] };
    expect(() => ReplyRules.from(oaOnly, 'miniprogram')).toThrow(
      'rules.0.reply.0: msgtype "wxcard" cannot be sent by a miniprogram',
    );
    expect(ReplyRules.from(oaOnly, 'officialaccount').decide(text('x')).kind).toBe('reply');
  });

  it('points at the line that is wrong in a rules file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wx-kf-rules-'));
    const file = join(dir, 'rules.yaml');
    writeFileSync(
      file,
      [
        'rules:',
        '  - when: { msgType: text, regex: "([" }',
        '    reply:',
        '      - msgtype: text',
        '        text: { content: hi }',
        '  - when: {}',
        '    reply: []',
        '',
      ].join('\n'),
    );
    try {
      ReplyRules.load(file, 'miniprogram');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems).toEqual([
        `${file}:2:35: rules.0.when.regex: is not a valid regular expression`,
        `${file}:6:11: rules.1.when: needs at least one condition`,
        `${file}:7:12: rules.1.reply: Too small: expected array to have >=1 items`,
      ]);
    }
    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify(contract));
    expect(ReplyRules.load(good, 'miniprogram').decide(text('hello')).kind).toBe('reply');
  });
});
