import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../config/errors.js';
import { replyFieldLimit, TEXT_CONTENT_MAX_BYTES, validateReply } from '../wechat/custom-message.js';
import type { InboundMessage } from '../wechat/message.js';
import { type Decision, ReplyRules } from './index.js';

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
// The contract's media folder: a real file where the example says.
const mediaDir = mkdtempSync(join(tmpdir(), 'wx-kf-rules-media-'));
mkdirSync(join(mediaDir, 'assets'));
writeFileSync(join(mediaDir, 'assets', 'qr.png'), 'PNG');
const rules = ReplyRules.from(contract, 'miniprogram', { mediaDir });

/** The problems of loading `text` as a rules file (written to `name` in a fresh folder), or [] if it loads. */
function problems(text: string, name = 'rules.yaml', accountType: 'miniprogram' | 'officialaccount' = 'miniprogram') {
  const dir = mkdtempSync(join(tmpdir(), 'wx-kf-rules-'));
  const file = join(dir, name);
  writeFileSync(file, text);
  try {
    ReplyRules.load(file, accountType);
    return { file, dir, problems: [] as string[] };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return { file, dir, problems: error.problems };
  }
}

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

  it('matches by message type and keeps file media, resolved inside the media folder, for the worker to upload', () => {
    const image = { ...base, MsgType: 'image', MediaId: 'm', MsgId: '2' } as InboundMessage;
    expect(rules.decide(image)).toEqual({
      kind: 'reply',
      replies: [{ msgtype: 'image', image: { file: realpathSync(join(mediaDir, 'assets', 'qr.png')) } }],
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

  it('fills templates from any field, empties unknown ones and names them', () => {
    const r = ReplyRules.from(
      { rules: [], fallback: say('{{FromUserName}} sent {{MsgType}}{{Nope}} at {{ CreateTime }}{{__proto__}}') },
      'miniprogram',
    );
    expect(r.decide(text('x'))).toEqual({
      kind: 'reply',
      replies: say('o_user sent text at 1714112445'),
      missing: ['Nope', '__proto__'],
    });
  });

  it('an empty reply list answers nothing, and stops the fallback', () => {
    const r = ReplyRules.from(
      { rules: [{ when: { msgType: 'event' }, reply: [] }], fallback: say('f') },
      'miniprogram',
    );
    expect(r.decide(event('subscribe'))).toEqual({ kind: 'reply', replies: [] });
    expect(r.decide(text('x')).kind).toBe('reply');
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
    const {
      file,
      dir,
      problems: found,
    } = problems(
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
    expect(found).toEqual([
      `${file}:2:35: rules.0.when.regex: is not a valid regular expression`,
      `${file}:6:11: rules.1.when: needs at least one condition`,
    ]);
    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify(contract));
    mkdirSync(join(dir, 'assets'));
    writeFileSync(join(dir, 'assets', 'qr.png'), 'PNG');
    expect(ReplyRules.load(good, 'miniprogram').decide(text('hello')).kind).toBe('reply');
  });

  it('refuses unknown condition values and conditions that never hold, with file:line:col', () => {
    const { file, problems: found } = problems(
      [
        'rules:',
        '  - when: { msgType: txt }',
        '    reply: [{ msgtype: text, text: { content: a } }]',
        '  - when: { event: Subscribe }',
        '    reply: [{ msgtype: text, text: { content: b } }]',
        '  - when: { event: subscribed }',
        '    reply: [{ msgtype: text, text: { content: c } }]',
        '  - when: { msgType: image, contains: x }',
        '    reply: [{ msgtype: text, text: { content: d } }]',
        '  - when: { msgType: text, event: CLICK }',
        '    reply: [{ msgtype: text, text: { content: e } }]',
        '',
      ].join('\n'),
    );
    expect(found).toEqual([
      expect.stringMatching(new RegExp(`^${file}:2:22: rules\\.0\\.when\\.msgType: Invalid option: .*"text"`)),
      `${file}:4:20: rules.1.when.event: unknown event "Subscribe": events are case-sensitive ("subscribe")`,
      expect.stringMatching(new RegExp(`^${file}:6:20: rules\\.2\\.when\\.event: unknown event "subscribed"`)),
      `${file}:8:22: rules.3.when.msgType: contains, equals and regex match a text message: they need msgType text`,
      `${file}:10:22: rules.4.when.msgType: event and eventKey match events: they need msgType event (or no msgType)`,
    ]);
  });

  it('gives reply-kind errors in a rules file a line and column', () => {
    const { file, problems: found } = problems(
      [
        'rules:',
        '  - when: { msgType: text }',
        '    reply:',
        '      - { msgtype: text, text: { content: ok } }',
        '      - { msgtype: news, news: { articles: [{ title: t, url: "https://example.com/" }] } }',
        'fallback:',
        '  - { msgtype: link, link: { title: t } }',
        '',
      ].join('\n'),
    );
    expect(found).toEqual([
      expect.stringMatching(
        new RegExp(`^${file}:5:9: rules\\.0\\.reply\\.1: msgtype "news" cannot be sent by a miniprogram`),
      ),
      expect.stringMatching(new RegExp(`^${file}:7:5: fallback\\.0: link\\.description: `)),
    ]);
  });

  it('a truncated JSON file is one line, without quoting its content', () => {
    const { file, problems: found } = problems(
      '{ "rules": [ { "when": { "msgType": "text" }, "reply": [{ "msg',
      'r.json',
    );
    expect(found).toEqual([`${file}:1:63: invalid JSON: Unterminated string`]);
    const yaml = problems('rules:\n  - when: { msgType: text\n    reply: []\n');
    expect(yaml.problems).toHaveLength(1);
  });
});

describe('media files in rules', () => {
  const reply = (file: string, msgtype = 'image') =>
    `rules:\n  - when: { msgType: image }\n    reply:\n      - msgtype: ${msgtype}\n        ${msgtype}: { file: ${JSON.stringify(file)} }\n`;

  it('refuses a file outside the rules folder, by .. or by a symlink, with file:line:col', () => {
    const outside = problems(reply('../../etc/passwd'));
    expect(outside.problems).toEqual([
      expect.stringMatching(
        new RegExp(
          `^${outside.file}:5:24: rules\\.0\\.reply\\.0\\.image\\.file: "\\.\\./\\.\\./etc/passwd" .*outside the media folder`,
        ),
      ),
    ]);
    const dir = mkdtempSync(join(tmpdir(), 'wx-kf-rules-link-'));
    symlinkSync('/etc/passwd', join(dir, 'passwd.png'));
    symlinkSync('/dev/zero', join(dir, 'zero.png'));
    for (const name of ['passwd.png', 'zero.png']) {
      writeFileSync(join(dir, 'rules.yaml'), reply(`./${name}`));
      expect(() => ReplyRules.load(join(dir, 'rules.yaml'), 'miniprogram')).toThrow(/outside the media folder/);
    }
  });

  it("refuses what is not a regular file, or over WeChat's limit for its kind, without reading it", () => {
    const dir = mkdtempSync(join(tmpdir(), 'wx-kf-rules-size-'));
    const file = join(dir, 'rules.yaml');
    const load = (text: string, type: 'miniprogram' | 'officialaccount' = 'officialaccount') => {
      writeFileSync(file, text);
      return () => ReplyRules.load(file, type);
    };
    // Sparse files: the size is what counts, and nothing is read.
    writeFileSync(join(dir, 'big.png'), '');
    truncateSync(join(dir, 'big.png'), 10 * 1024 * 1024 + 1);
    writeFileSync(join(dir, 'ok.png'), '');
    truncateSync(join(dir, 'ok.png'), 10 * 1024 * 1024);
    writeFileSync(join(dir, 'voice.amr'), '');
    truncateSync(join(dir, 'voice.amr'), 2 * 1024 * 1024 + 1);
    mkdirSync(join(dir, 'folder'));
    execFileSync('mkfifo', [join(dir, 'pipe.png')]);
    expect(load(reply('big.png'))).toThrow(/big\.png" is larger than WeChat's 10 MB limit for image/);
    expect(load(reply('ok.png'))).not.toThrow();
    expect(load(reply('voice.amr', 'voice'))).toThrow(/larger than WeChat's 2 MB limit for voice/);
    expect(load(reply('folder'))).toThrow(/"folder" is not a regular file/);
    expect(load(reply('pipe.png'))).toThrow(/"pipe\.png" is not a regular file/);
    expect(load(reply('missing.png'))).toThrow(/"missing\.png" cannot be read \(ENOENT\)/);
    const music = `rules:\n  - when: { msgType: text }\n    reply:\n      - msgtype: music\n        music: { musicurl: "https://example.com/a.mp3", hqmusicurl: "https://example.com/a.mp3", file: thumb.jpg }\n`;
    writeFileSync(join(dir, 'thumb.jpg'), Buffer.alloc(64 * 1024 + 1));
    expect(load(music)).toThrow(/larger than WeChat's 64 kB limit for thumb/);
  });

  it('a file is a fixed path: never a template, never filled from the message', () => {
    expect(problems(reply('{{Content}}.png')).problems).toEqual([
      expect.stringMatching(/image\.file: a file is a fixed path, not a template$/),
    ]);
    // Without a rules file (parsed data), there is no media folder, so no file.
    expect(() =>
      ReplyRules.from(
        { rules: [{ when: { msgType: 'image' }, reply: [{ msgtype: 'image', image: { file: 'a.png' } }] }] },
        'miniprogram',
      ),
    ).toThrow('a file is only allowed in a rules file');
  });
});

describe("rendered replies fit WeChat's limits", () => {
  const bytes = (s: string) => Buffer.byteLength(s, 'utf8');
  /** Well-formed UTF-16 (no lone surrogate): what survives a UTF-8 round trip unchanged. */
  const wellFormed = (s: string) => Buffer.from(s, 'utf8').toString('utf8') === s;
  // A long Chinese message, as a user might paste it: 700 characters, 2 100 bytes of UTF-8.
  const long = '我想咨询一下订单的配送进度，已经等了很久了。'.repeat(32).slice(0, 700);
  /** The first reply's text as the worker sends it: checked with validateReply, as checkReplies does. */
  const sentText = (decision: Decision) => {
    if (decision.kind !== 'reply') throw new Error('expected a reply');
    const sendable = validateReply(decision.replies[0], 'miniprogram');
    if (sendable.msgtype !== 'text') throw new Error('expected a text');
    return sendable.text.content;
  };

  it('收到：{{Content}} with a 700-character Chinese message renders a sendable text of at most 2048 bytes', () => {
    expect(bytes(long)).toBe(2100);
    const decision = rules.decide(text(long));
    const content = sentText(decision); // the worker's check passes
    expect(bytes(content)).toBeLessThanOrEqual(TEXT_CONTENT_MAX_BYTES);
    expect(bytes(content)).toBeGreaterThan(TEXT_CONTENT_MAX_BYTES - 3); // clipped, not emptied
    // The template's own text whole, the message cut between two characters and marked (docs/configuration.md).
    expect(content).toBe(`收到：${long.slice(0, 678)}…`);
    expect(decision).not.toHaveProperty('missing');
  });

  it('never splits a character or a surrogate pair, whatever the length', () => {
    const r = ReplyRules.from({ rules: [], fallback: say('收到：{{Content}}') }, 'miniprogram');
    // Emoji (4 bytes, a surrogate pair), Chinese (3 bytes), Latin with accents (2) and ASCII (1), at every offset.
    const mixed = '😀中é a'.repeat(600);
    for (let cut = 0; cut < 5; cut++) {
      const content = sentText(r.decide(text([...mixed].slice(cut).join(''))));
      expect(wellFormed(content)).toBe(true);
      expect(bytes(content)).toBeLessThanOrEqual(TEXT_CONTENT_MAX_BYTES);
      expect(bytes(content)).toBeGreaterThan(TEXT_CONTENT_MAX_BYTES - 6);
      expect(content.endsWith('…')).toBe(true);
    }
  });

  it('a message that fits is left whole', () => {
    const fits = '中'.repeat(679); // 2 037 bytes + "收到：" (9) = 2 046
    expect(rules.decide(text(fits))).toEqual({ kind: 'reply', replies: say(`收到：${fits}`) });
  });

  it('fields in one template share the room: a short one stays whole, the long ones get equal parts', () => {
    const r = ReplyRules.from(
      { rules: [{ when: { regex: '^(.*)$' }, reply: say('[{{match.1}}] [{{FromUserName}}] [{{Content}}]') }] },
      'miniprogram',
    );
    const content = sentText(r.decide(text('中'.repeat(1000))));
    const [, first, user, last] = /^\[(.*)\] \[(.*)\] \[(.*)\]$/.exec(content) ?? [];
    expect(user).toBe('o_user');
    expect(first).toBe(last);
    expect(first?.endsWith('…')).toBe(true);
    expect(bytes(content)).toBeLessThanOrEqual(TEXT_CONTENT_MAX_BYTES);
  });

  it('titles, descriptions, URLs and menu items of every reply kind are clipped to their own limits', () => {
    const c = '{{Content}}';
    const u = `https://example.com/s?q=${c}`;
    const oa = ReplyRules.from(
      {
        rules: [],
        fallback: [
          { msgtype: 'news', news: { articles: [{ title: `标题 ${c}`, description: c, url: u, picurl: u }] } },
          { msgtype: 'video', video: { media_id: 'M', thumb_media_id: 'T', title: c, description: c } },
          { msgtype: 'music', music: { title: c, description: c, musicurl: u, hqmusicurl: u, thumb_media_id: 'T' } },
          {
            msgtype: 'msgmenu',
            msgmenu: { head_content: c, list: [{ id: '101', content: `满意 ${c}` }], tail_content: c },
          },
          {
            msgtype: 'miniprogrampage',
            miniprogrampage: { title: c, appid: 'wx1', pagepath: `p?q=${c}`, thumb_media_id: 'T' },
          },
        ],
      },
      'officialaccount',
    );
    const mp = ReplyRules.from(
      {
        rules: [],
        fallback: [
          { msgtype: 'link', link: { title: c, description: c, url: u, thumb_url: u } },
          { msgtype: 'miniprogrampage', miniprogrampage: { title: c, pagepath: `p?q=${c}`, thumb_media_id: 'T' } },
        ],
      },
      'miniprogram',
    );
    // Longer than every limit in bytes and in characters (URLs count characters).
    const huge = text('😀中a'.repeat(1000));
    /** Every string of a reply, with where it sits. */
    const leaves = (v: unknown, path: (string | number)[] = []): [(string | number)[], string][] =>
      typeof v === 'string'
        ? [[path, v]]
        : Array.isArray(v)
          ? v.flatMap((x, i) => leaves(x, [...path, i]))
          : v && typeof v === 'object'
            ? Object.entries(v).flatMap(([k, x]) => leaves(x, [...path, k]))
            : [];
    let filled = 0;
    for (const [r, kind] of [
      [oa, 'officialaccount'],
      [mp, 'miniprogram'],
    ] as const) {
      const decision = r.decide(huge);
      if (decision.kind !== 'reply') throw new Error('expected a reply');
      for (const reply of decision.replies) {
        expect(() => validateReply(reply, kind)).not.toThrow();
        for (const [path, value] of leaves(reply).filter(([, v]) => v.includes('😀'))) {
          filled++;
          const { max, unit } = replyFieldLimit(path);
          const size = unit === 'utf8' ? bytes(value) : value.length;
          expect(wellFormed(value)).toBe(true);
          expect(value.endsWith('…'), path.join('.')).toBe(true);
          expect(size, path.join('.')).toBeLessThanOrEqual(max);
          expect(size, path.join('.')).toBeGreaterThan(max - 7); // clipped at the limit, not far below it
        }
      }
    }
    expect(filled).toBe(21); // every template field of the seven replies
  });
});
