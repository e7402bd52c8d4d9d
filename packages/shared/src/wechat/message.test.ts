import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type FieldMap, formatFields, type PushFormat, parseFields } from './body.js';
import { MessageFormatError } from './errors.js';
import { dedupKey, parseMessage } from './message.js';

const base = { ToUserName: 'gh_97417a04a28d', FromUserName: 'o9AgO5Kd5ggOC-bXrbNODIiE3bGY', CreateTime: '1714112445' };
const MSG_ID = '6054768590064713728'; // > 2^53: JSON.parse would turn it into 6054768590064714000

const samples: Record<string, FieldMap> = {
  text: { ...base, MsgType: 'text', Content: '你好 <b>&amp;</b> ]]> end', MsgId: MSG_ID },
  'text (msgmenu click)': { ...base, MsgType: 'text', Content: '满意', MsgId: MSG_ID, bizmsgmenuid: '101' },
  image: { ...base, MsgType: 'image', PicUrl: 'https://mmbiz.qpic.cn/x', MediaId: 'media-1', MsgId: MSG_ID },
  miniprogrampage: {
    ...base,
    MsgType: 'miniprogrampage',
    MsgId: MSG_ID,
    Title: '标题',
    AppId: 'wxba5fad812f8e6fb9',
    PagePath: 'pages/index/index?x=1',
    ThumbUrl: 'https://mmbiz.qpic.cn/t',
    ThumbMediaId: 'thumb-1',
  },
  'event user_enter_tempsession': { ...base, MsgType: 'event', Event: 'user_enter_tempsession', SessionFrom: 'btn' },
  voice: { ...base, MsgType: 'voice', MediaId: 'm', Format: 'amr', Recognition: '语音', MsgId: MSG_ID },
  video: { ...base, MsgType: 'video', MediaId: 'm', ThumbMediaId: 't', MsgId: MSG_ID },
  shortvideo: { ...base, MsgType: 'shortvideo', MediaId: 'm', ThumbMediaId: 't', MsgId: MSG_ID },
  location: {
    ...base,
    MsgType: 'location',
    Location_X: '23.134521',
    Location_Y: '113.358803',
    Scale: '20',
    Label: '广州',
    MsgId: MSG_ID,
  },
  link: { ...base, MsgType: 'link', Title: 't', Description: 'd', Url: 'https://example.com/a?b=c&d=e', MsgId: MSG_ID },
  'event subscribe (QR)': { ...base, MsgType: 'event', Event: 'subscribe', EventKey: 'qrscene_123', Ticket: 'TICKET' },
  'event unsubscribe': { ...base, MsgType: 'event', Event: 'unsubscribe' },
  'event SCAN': { ...base, MsgType: 'event', Event: 'SCAN', EventKey: '123', Ticket: 'TICKET' },
  'event CLICK': { ...base, MsgType: 'event', Event: 'CLICK', EventKey: 'MENU_1' },
  'event VIEW': { ...base, MsgType: 'event', Event: 'VIEW', EventKey: 'https://example.com', MenuId: '7' },
  'event LOCATION': {
    ...base,
    MsgType: 'event',
    Event: 'LOCATION',
    Latitude: '23.1',
    Longitude: '113.3',
    Precision: '119.3',
  },
  'event kf_create_session': { ...base, MsgType: 'event', Event: 'kf_create_session', KfAccount: 'test1@test' },
  'event kf_close_session': { ...base, MsgType: 'event', Event: 'kf_close_session', KfAccount: 'test1@test' },
  'event kf_switch_session': {
    ...base,
    MsgType: 'event',
    Event: 'kf_switch_session',
    FromKfAccount: 'a@t',
    ToKfAccount: 'b@t',
  },
  'event scancode_push (nested)': {
    ...base,
    MsgType: 'event',
    Event: 'scancode_push',
    EventKey: 'k',
    ScanCodeInfo: { ScanType: 'qrcode', ScanResult: '1' },
  },
};

/** Characters XML 1.0 can carry (CR is normalised away by XML parsers, so it is left out too). */
function isXmlChar(ch: string): boolean {
  const c = ch.codePointAt(0) ?? 0;
  return c === 0x09 || c === 0x0a || (c >= 0x20 && c !== 0xfffe && c !== 0xffff);
}

describe('parseMessage', () => {
  for (const format of ['xml', 'json'] as PushFormat[]) {
    it.each(Object.entries(samples))(`${format}: %s`, (_name, fields) => {
      const body = formatFields(fields, format);
      expect(parseMessage(body)).toEqual(fields);
    });
  }

  it('keeps a 19-digit MsgId exactly from a bare JSON number', () => {
    const body = `{"ToUserName":"gh_1","FromUserName":"o_1","CreateTime":1482048670,"MsgType":"text","Content":"x","MsgId":${MSG_ID}}`;
    expect(JSON.parse(body).MsgId).not.toBe(Number(MSG_ID).toString()); // the trap: precision is lost
    const message = parseMessage(body);
    expect(message.MsgId).toBe(MSG_ID);
    expect(message.CreateTime).toBe('1482048670');
    expect(parseMessage(formatFields(samples.text as FieldMap, 'xml')).MsgId).toBe(MSG_ID);
  });

  it('accepts the official MP XML and JSON examples', () => {
    const xml =
      '<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[fromUser]]></FromUserName><CreateTime>1482048670</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[this is a test]]></Content><MsgId>1234567890123456</MsgId></xml>';
    const json =
      '{"ToUserName":"toUser","FromUserName":"fromUser","CreateTime":1482048670,"MsgType":"text","Content":"this is a test","MsgId":1234567890123456}';
    expect(parseMessage(xml)).toEqual(parseMessage(json));
    expect(parseMessage(json)).toMatchObject({ MsgType: 'text', Content: 'this is a test', MsgId: '1234567890123456' });
  });

  it('passes an unknown message type through untouched', () => {
    const fields = { ...base, MsgType: 'hologram', Depth: '3', MsgId: '42' };
    expect(parseMessage(formatFields(fields, 'json'))).toEqual(fields);
  });

  it('passes a message type named like an Object property through as well', () => {
    for (const MsgType of ['toString', 'constructor', '__defineGetter__']) {
      const fields = { ...base, MsgType, MsgId: '42' };
      expect(parseMessage(formatFields(fields, 'json'))).toEqual(fields);
    }
  });

  it('keeps whitespace inside values and ignores it between tags', () => {
    const xml = `<xml>\n  <ToUserName><![CDATA[gh]]></ToUserName>\n  <FromUserName>o</FromUserName>\n  <CreateTime>1</CreateTime>\n  <MsgType>text</MsgType>\n  <Content><![CDATA[  two  spaces  ]]></Content>\n</xml>\n`;
    expect(parseMessage(xml)).toEqual({
      ToUserName: 'gh',
      FromUserName: 'o',
      CreateTime: '1',
      MsgType: 'text',
      Content: '  two  spaces  ',
    });
  });

  it('round-trips random text messages in both formats', () => {
    // XML 1.0 cannot carry most control characters, so the XML run uses printable text.
    const xmlSafe = fc.string({ unit: 'grapheme', maxLength: 400 }).filter((s) => [...s].every(isXmlChar));
    fc.assert(
      fc.property(
        xmlSafe,
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        fc.constantFrom<PushFormat>('xml', 'json'),
        (content, id, format) => {
          const fields = { ...base, MsgType: 'text', Content: content, MsgId: id.toString() };
          expect(parseMessage(formatFields(fields, format))).toEqual(fields);
        },
      ),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (content) => {
        const fields = { ...base, MsgType: 'text', Content: content, MsgId: '1' };
        expect(parseMessage(formatFields(fields, 'json'))).toEqual(fields);
      }),
      { numRuns: 300 },
    );
  });
});

describe('malformed pushes give MessageFormatError', () => {
  const textXml = formatFields(samples.text as FieldMap, 'xml');
  const cases: [string, string][] = [
    ['empty body', ''],
    ['plain text', 'hello'],
    ['a JSON array', '[1,2]'],
    ['a JSON string', '"x"'],
    ['truncated JSON', '{"ToUserName":"gh"'],
    ['truncated XML', textXml.slice(0, -10)],
    ['XML with a DOCTYPE', `<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "b">]>${textXml}`],
    ['XML with an external entity', '<!DOCTYPE xml SYSTEM "file:///etc/passwd"><xml><A>&ent;</A></xml>'],
    [
      'XML billion laughs',
      `<!DOCTYPE l [<!ENTITY l0 "ha">${Array.from({ length: 9 }, (_, i) => `<!ENTITY l${i + 1} "${`&l${i};`.repeat(10)}">`).join('')}]><xml><A>&l9;</A></xml>`,
    ],
    ['two XML roots', `${textXml}<xml></xml>`],
    ['a root other than <xml>', '<message><A>1</A></message>'],
    ['deeply nested XML', `<xml>${'<a>'.repeat(5000)}${'</a>'.repeat(5000)}</xml>`],
    ['deeply nested JSON', `{"a":${'['.repeat(5000)}${']'.repeat(5000)}}`],
    ['missing FromUserName', formatFields({ ToUserName: 'a', CreateTime: '1', MsgType: 'text', Content: 'x' }, 'json')],
    ['nested MsgType', formatFields({ ...base, MsgType: { a: 'b' }, Content: 'x' }, 'json')],
    ['text without Content', formatFields({ ...base, MsgType: 'text', MsgId: '1' }, 'xml')],
    ['event without Event', formatFields({ ...base, MsgType: 'event' }, 'json')],
    [
      'non-numeric CreateTime',
      formatFields({ ...base, CreateTime: 'yesterday', MsgType: 'text', Content: 'x' }, 'json'),
    ],
    ['non-numeric MsgId', formatFields({ ...base, MsgType: 'text', Content: 'x', MsgId: '12ab' }, 'json')],
  ];
  it.each(cases)('%s', (_name, body) => {
    expect(() => parseMessage(body)).toThrow(MessageFormatError);
  });

  it('handles a 1 MB body without hanging', () => {
    const huge = formatFields({ ...base, MsgType: 'text', Content: 'x'.repeat(1_000_000), MsgId: '1' }, 'xml');
    expect(parseMessage(huge).Content).toHaveLength(1_000_000);
    expect(() => parseFields(`<xml>${'<A>1</A>'.repeat(100_000)}`)).toThrow(MessageFormatError);
  });
});

describe('dedupKey', () => {
  it('uses the MsgId for messages', () => {
    expect(dedupKey(parseMessage(formatFields(samples.text as FieldMap, 'json')))).toBe(`m:${MSG_ID}`);
  });

  it('tells apart two events of one user in the same second', () => {
    const location = parseMessage(formatFields(samples['event LOCATION'] as FieldMap, 'xml'));
    const view = parseMessage(formatFields(samples['event VIEW'] as FieldMap, 'xml'));
    expect(dedupKey(location)).not.toBe(dedupKey(view));
    // The same event with any other field changed (another location) is another push.
    const moved = parseMessage(formatFields({ ...(samples['event LOCATION'] as FieldMap), Latitude: '0.5' }, 'xml'));
    expect(dedupKey(moved)).not.toBe(dedupKey(location));
  });

  it('keys a job result on its own id, and a text message spelled MsgID on that id', () => {
    const result = { ...base, MsgType: 'event', Event: 'TEMPLATESENDJOBFINISH', MsgID: '200163836', Status: 'success' };
    expect(dedupKey(parseMessage(formatFields(result, 'xml')))).toBe('e:TEMPLATESENDJOBFINISH:200163836');
    const text = { ...base, MsgType: 'text', Content: 'x', MsgID: MSG_ID };
    expect(dedupKey(parseMessage(formatFields(text, 'json')))).toBe(`m:${MSG_ID}`);
  });

  it('is the same for the same push in either format', () => {
    const click = samples['event CLICK'] as FieldMap;
    expect(dedupKey(parseMessage(formatFields(click, 'xml')))).toBe(
      dedupKey(parseMessage(formatFields(click, 'json'))),
    );
  });
});

describe('JSON numbers', () => {
  it('keeps the MsgId exact on the fast path and other long or decimal numbers through the lossless one', () => {
    const body = `{"ToUserName":"gh","FromUserName":"o","CreateTime":1,"MsgType":"location","Location_X":23.1345210,"Location_Y":113.358803,"Scale":20,"Label":"x","MsgId":6054768590064713728,"Big":12345678901234567890}`;
    expect(parseMessage(body)).toMatchObject({
      MsgId: '6054768590064713728',
      Location_X: '23.1345210',
      Big: '12345678901234567890',
    });
    const text = `{"ToUserName":"gh","FromUserName":"o","CreateTime":1,"MsgType":"text","Content":",\\"MsgId\\":12345678901234567890","MsgId":6054768590064713728}`;
    expect(parseMessage(text)).toMatchObject({
      MsgId: '6054768590064713728',
      Content: ',"MsgId":12345678901234567890',
    });
  });
});
