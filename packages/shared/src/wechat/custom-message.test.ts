import { describe, expect, it } from 'vitest';
import {
  asAgent,
  messageBuilders,
  replyFieldLimit,
  SENDABLE_TYPES,
  TEXT_CONTENT_MAX_BYTES,
  toCustomMessage,
  validateReply,
  validateReplyTemplate,
} from './custom-message.js';
import { MessageFormatError } from './errors.js';

const url = 'https://example.com/x';
const miniprogram = [
  messageBuilders.text('hi'),
  messageBuilders.image('MEDIA'),
  messageBuilders.link({ title: 't', description: 'd', url, thumb_url: url }),
  messageBuilders.miniprogrampage({ title: 't', pagepath: 'pages/index/index', thumb_media_id: 'THUMB' }),
];
const officialaccount = [
  messageBuilders.text('hi'),
  messageBuilders.image('MEDIA'),
  messageBuilders.voice('MEDIA'),
  messageBuilders.video({ media_id: 'M', thumb_media_id: 'T', title: 't' }),
  messageBuilders.music({ musicurl: url, hqmusicurl: url, thumb_media_id: 'T' }),
  messageBuilders.news({ title: 't', url, picurl: url }),
  messageBuilders.mpnews('MEDIA'),
  messageBuilders.mpnewsarticle('ARTICLE'),
  messageBuilders.msgmenu({ head_content: '评价', list: [{ id: '101', content: '满意' }], tail_content: '谢谢' }),
  messageBuilders.wxcard('CARD'),
  messageBuilders.miniprogrampage({ title: 't', appid: 'wx1', pagepath: 'p', thumb_media_id: 'T' }),
  asAgent(messageBuilders.text('from an agent'), 'test1@kftest'),
];

describe('custom/send bodies', () => {
  it('lists what each account kind can send', () => {
    expect(SENDABLE_TYPES.miniprogram).toEqual(['text', 'image', 'link', 'miniprogrampage']);
    expect(SENDABLE_TYPES.officialaccount).toEqual(
      expect.arrayContaining(['voice', 'video', 'music', 'news', 'mpnews', 'mpnewsarticle', 'msgmenu', 'wxcard']),
    );
  });

  it.each(miniprogram)('a Mini Program sends $msgtype', (item) => {
    expect(validateReply(item, 'miniprogram')).toEqual(item);
  });

  it.each(officialaccount)('an Official Account sends $msgtype', (item) => {
    expect(validateReply(item, 'officialaccount')).toEqual(item);
  });

  it.each(['voice', 'video', 'music', 'news', 'mpnews', 'msgmenu', 'wxcard'])(
    'a Mini Program cannot send %s',
    (type) => {
      const item = officialaccount.find((i) => i.msgtype === type);
      expect(() => validateReply(item, 'miniprogram')).toThrow(`msgtype "${type}" cannot be sent by a miniprogram`);
    },
  );

  it.each([
    ['an empty text', { msgtype: 'text', text: { content: '' } }, 'text.content'],
    ['an image without media_id', { msgtype: 'image', image: {} }, 'image.media_id'],
    [
      'two news articles (WeChat: 45008)',
      {
        msgtype: 'news',
        news: {
          articles: [
            { title: 'a', url },
            { title: 'b', url },
          ],
        },
      },
      'news.articles',
    ],
    [
      'a miniprogrampage without appid',
      { msgtype: 'miniprogrampage', miniprogrampage: { title: 't', pagepath: 'p', thumb_media_id: 'T' } },
      'appid',
    ],
    [
      'a link with a bad url',
      { msgtype: 'link', link: { title: 't', description: 'd', url: 'nope', thumb_url: url } },
      'link',
    ],
    ['an unknown field', { msgtype: 'text', text: { content: 'x' }, extra: 1 }, 'extra'],
    ['no msgtype', { text: { content: 'x' } }, 'msgtype'],
    ['not an object', 'hello', ''],
  ])('rejects %s with the reason', (_label, item, where) => {
    const account = (item as { msgtype?: string }).msgtype === 'link' ? 'miniprogram' : 'officialaccount';
    expect(() => validateReply(item, account)).toThrow(MessageFormatError);
    try {
      validateReply(item, account);
    } catch (err) {
      expect((err as Error).message).toContain(where);
    }
  });

  it('accepts a local file in place of media_id only in templates', () => {
    const template = { msgtype: 'image', image: { file: './assets/qr.png' } };
    expect(validateReplyTemplate(template, 'miniprogram')).toEqual(template);
    expect(() => validateReply(template, 'miniprogram')).toThrow(MessageFormatError);
  });

  it('bounds text content by UTF-8 bytes, as WeChat does', () => {
    expect(TEXT_CONTENT_MAX_BYTES).toBe(2048);
    expect(validateReply(messageBuilders.text('a'.repeat(2048)), 'miniprogram')).toBeTruthy();
    expect(validateReply(messageBuilders.text('中'.repeat(682)), 'miniprogram')).toBeTruthy(); // 2046 bytes
    expect(() => validateReply(messageBuilders.text('中'.repeat(683)), 'miniprogram')).toThrow(
      'text.content: at most 2048 bytes',
    );
  });

  it.each([
    ['a media_id', messageBuilders.image('M'.repeat(257)), 'image.media_id: at most 256 bytes'],
    ['a url', messageBuilders.news({ title: 't', url: `${url}/${'x'.repeat(2048)}` }), 'news.articles.0.url'],
    ['a title', messageBuilders.news({ title: 't'.repeat(1025), url }), 'news.articles.0.title: at most 1024 bytes'],
    [
      'a menu',
      messageBuilders.msgmenu({ list: Array.from({ length: 21 }, (_, i) => ({ id: String(i), content: 'c' })) }),
      'msgmenu.list',
    ],
  ])('refuses an oversized %s', (_label, item, reason) => {
    expect(() => validateReply(item, 'officialaccount')).toThrow(reason);
  });

  it('replyFieldLimit (what rendered templates are clipped to) is the limit validateReply enforces, field by field', () => {
    const full = [
      messageBuilders.video({ media_id: 'M', thumb_media_id: 'T', title: 't', description: 'd' }),
      messageBuilders.music({ title: 't', description: 'd', musicurl: url, hqmusicurl: url, thumb_media_id: 'T' }),
      messageBuilders.news({ title: 't', description: 'd', url, picurl: url }),
    ];
    const items = [
      ...miniprogram.map((item) => ['miniprogram', item] as const),
      ...[...officialaccount, ...full].map((item) => ['officialaccount', item] as const),
    ];
    /** The item with the string at `path` set to `value`. */
    const withValue = (item: unknown, path: (string | number)[], value: string): unknown => {
      const [head, ...rest] = path;
      if (head === undefined) return value;
      const copy = (Array.isArray(item) ? [...item] : { ...(item as object) }) as Record<string | number, unknown>;
      copy[head] = withValue(copy[head], rest, value);
      return copy;
    };
    const paths = (v: unknown, path: (string | number)[] = []): (string | number)[][] =>
      typeof v === 'string'
        ? [path]
        : v && typeof v === 'object'
          ? Object.entries(v).flatMap(([k, x]) => paths(x, [...path, Array.isArray(v) ? Number(k) : k]))
          : [];
    let checked = 0;
    for (const [kind, item] of items) {
      for (const path of paths(item).filter((p) => p[0] !== 'msgtype')) {
        const { max, unit } = replyFieldLimit(path);
        // A URL at exactly the limit in characters; anything else at exactly the limit in bytes (中 is 3).
        const at =
          unit === 'utf16'
            ? `${url}?q=${'x'.repeat(max - url.length - 3)}`
            : `${'中'.repeat(Math.floor(max / 3))}${'a'.repeat(max % 3)}`;
        expect(() => validateReply(withValue(item, path, at), kind), path.join('.')).not.toThrow();
        expect(() => validateReply(withValue(item, path, `${at}a`), kind), path.join('.')).toThrow(MessageFormatError);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(40);
  });

  it('keeps its reasons short, whatever the input', () => {
    const huge = { msgtype: 'x'.repeat(100_000), text: { content: 'x' } };
    const many = { msgtype: 'msgmenu', msgmenu: { list: Array.from({ length: 1000 }, () => ({})) } };
    for (const item of [huge, many]) {
      expect(() => validateReply(item, 'officialaccount')).toThrow(MessageFormatError);
      try {
        validateReply(item, 'officialaccount');
      } catch (err) {
        expect((err as Error).message.length).toBeLessThanOrEqual(300);
      }
    }
  });

  it('never passes a file on, even next to a media_id', () => {
    const sneaky = { msgtype: 'image', image: { media_id: 'M', file: '/etc/passwd' } };
    expect(validateReply(sneaky, 'miniprogram')).toEqual({ msgtype: 'image', image: { media_id: 'M' } });
  });

  it('adds touser for the API body', () => {
    expect(toCustomMessage('o_user', messageBuilders.text('hi'))).toEqual({
      touser: 'o_user',
      msgtype: 'text',
      text: { content: 'hi' },
    });
  });
});
