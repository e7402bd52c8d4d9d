import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AnswerSplitter,
  CLIP_MARK,
  cutIndex,
  FIRST_MESSAGE_MIN_BYTES,
  MESSAGE_MAX_BYTES,
  splitAnswer,
} from './split.js';

const bytes = (s: string) => Buffer.byteLength(s);
const en = (n: number) => `Sentence ${n} is an English sentence of a long answer to split at boundaries.`;
const zh = (n: number) => `第${n}句：这是一个用于测试切分的中文长句子。`;
/** Paragraphs of `sizes[i]` sentences each, alternately English and Chinese. */
const answer = (sizes: number[]) => {
  let n = 0;
  return sizes
    .map((count) =>
      Array.from({ length: count }, () => (++n % 2 ? `${en(n)} ` : zh(n)))
        .join('')
        .trim(),
    )
    .join('\n\n');
};

/** Streams `text` through a splitter in pieces of `step` characters. */
function streamed(text: string, options: ConstructorParameters<typeof AnswerSplitter>[0], step = 7) {
  const s = new AnswerSplitter(options);
  const out: string[] = [];
  for (let i = 0; i < text.length; i += step) out.push(...s.push(text.slice(i, i + step)));
  out.push(...s.end());
  return { out, dropped: s.droppedBytes };
}

describe('splitting an answer into WeChat messages', () => {
  it('keeps a short answer whole, and packs paragraphs into as few messages of at most 2 048 bytes as fit', () => {
    expect(splitAnswer('  hello\n\nworld  ')).toEqual(['hello\n\nworld']);
    const text = answer([3, 8, 30, 5, 3, 8]);
    const parts = splitAnswer(text);
    expect(parts.length).toBeGreaterThan(2);
    for (const p of parts) expect(bytes(p)).toBeLessThanOrEqual(MESSAGE_MAX_BYTES);
    // Nothing lost or reordered: the parts are the answer, cut at whitespace.
    expect(parts.join('').replace(/\s/g, '')).toBe(text.replace(/\s/g, ''));
  });

  it('cuts at a paragraph when one fits, else at a sentence end (English needs the space after), never mid-word', () => {
    const paragraphs = `${'a'.repeat(1500)}\n\n${'b '.repeat(400)}`;
    expect(paragraphs.slice(0, cutIndex(paragraphs, MESSAGE_MAX_BYTES))).toBe('a'.repeat(1500));
    const long = answer([40]); // one paragraph of about 3.6 kB
    const first = long.slice(0, cutIndex(long, MESSAGE_MAX_BYTES));
    expect(first).toMatch(/(\.|。)$/);
    expect(bytes(first)).toBeLessThanOrEqual(MESSAGE_MAX_BYTES);
    const words = 'word '.repeat(600);
    const at = cutIndex(words, 100);
    expect([words.slice(at - 4, at), words[at]]).toEqual(['word', ' ']);
  });

  it('never splits a character, however the text runs (no boundary at all: at a code point)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 3000 }),
        fc.integer({ min: 8, max: 300 }),
        (text, max) => {
          for (const part of splitAnswer(text, max)) {
            expect(bytes(part)).toBeLessThanOrEqual(max);
            expect(part).not.toMatch(/^[\uDC00-\uDFFF]|[\uD800-\uDBFF]$/);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('streamed, gives the same messages as the whole answer (without the early first message)', () => {
    const text = answer([3, 8, 30, 5, 3]);
    for (const step of [1, 3, 50, 400]) {
      expect(streamed(text, { maxMessages: 20 }, step).out).toEqual(splitAnswer(text));
    }
  });

  it('with firstEarly, the first complete paragraph (once 100 bytes long) goes at once, the rest packed', () => {
    const text = answer([3, 8, 30]);
    const s = new AnswerSplitter({ maxMessages: 5, firstEarly: true });
    const firstParagraph = text.split('\n\n')[0] as string;
    expect(bytes(firstParagraph)).toBeGreaterThan(FIRST_MESSAGE_MIN_BYTES);
    expect(s.push(`${firstParagraph}\n`)).toEqual([]);
    expect(s.push('\nSecond')).toEqual([firstParagraph]);
    // Only once a second send is allowed: one send left means one packed message.
    const one = new AnswerSplitter({ maxMessages: 1, firstEarly: true });
    expect(one.push(`${firstParagraph}\n\nSecond`)).toEqual([]);
    expect(one.end()).toEqual([`${firstParagraph}\n\nSecond`]);
    // A short first paragraph waits for more.
    const short = new AnswerSplitter({ maxMessages: 5, firstEarly: true });
    expect(short.push('Sure!\n\nHere it is.')).toEqual([]);
  });

  it('stops at the messages allowed: the last ends with …, the rest is counted as dropped', () => {
    const text = answer([3, 8, 30, 5, 3, 8, 30]); // about 9 kB
    const all = splitAnswer(text);
    const { out, dropped } = streamed(text, { maxMessages: 2 });
    expect(out).toHaveLength(2);
    expect(out[0]).toBe(all[0]);
    expect(out[1]?.endsWith(CLIP_MARK)).toBe(true);
    for (const p of out) expect(bytes(p)).toBeLessThanOrEqual(MESSAGE_MAX_BYTES);
    expect(dropped).toBeGreaterThan(bytes(text) - 2 * MESSAGE_MAX_BYTES - 10);
    const s = new AnswerSplitter({ maxMessages: 1 });
    s.push(text);
    expect(s.full).toBe(true);
    expect(s.push('more')).toEqual([]);
    expect(s.droppedBytes).toBeGreaterThan(bytes(text) - MESSAGE_MAX_BYTES);
  });
});
