import { TEXT_CONTENT_MAX_BYTES } from '../wechat/custom-message.js';

/** WeChat's limit for one text message: an answer is split into messages of at most this many bytes. */
export const MESSAGE_MAX_BYTES = TEXT_CONTENT_MAX_BYTES;
/** Marks the end of the last message when the rest of the answer does not fit the sends left. */
export const CLIP_MARK = '…';
/** A streamed answer's first message goes early only once it holds this much (a lone "Sure!" is not worth a send). */
export const FIRST_MESSAGE_MIN_BYTES = 100;

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

// Where a message may end, best first: after a blank line (a paragraph), after a sentence's end (Western
// punctuation needs the space or line break that follows it; CJK punctuation does not), after a line break,
// after a space.
const PARAGRAPH = /\n\s*\n/g;
const SENTENCE = /[。！？；!?…]+["'”’」』）)]*|[.!?]+["'”’)]*(?=\s)/g;
const LINE = /\n/g;
const SPACE = /[ \t]+/g;

/** The UTF-16 index where the first `max` bytes of `text` end, never inside a character or surrogate pair. */
function byteIndex(text: string, max: number): number {
  let used = 0;
  let i = 0;
  for (const char of text) {
    used += bytes(char);
    if (used > max) break;
    i += char.length;
  }
  return i;
}

/** The last end of a `pattern` match at or before `limit` (beyond index 0), or -1. */
function lastEnd(text: string, pattern: RegExp, limit: number): number {
  let best = -1;
  pattern.lastIndex = 0;
  for (let m = pattern.exec(text); m; m = pattern.exec(text)) {
    const end = pattern === SENTENCE ? m.index + m[0].length : m.index;
    if (end > limit) break;
    if (end > 0) best = end;
    if (m[0].length === 0) pattern.lastIndex++;
  }
  return best;
}

/**
 * Where the first message of `text` ends when it may hold `max` bytes: the whole text if it fits, else at the
 * last paragraph break within the limit, else the last sentence end, line break or space, else at a character
 * boundary. Deterministic in the first `max` bytes (and the character after them), so a streamed answer is cut
 * exactly where the whole answer would be.
 */
export function cutIndex(text: string, max: number): number {
  if (bytes(text) <= max) return text.length;
  const limit = byteIndex(text, max);
  for (const pattern of [PARAGRAPH, SENTENCE, LINE, SPACE]) {
    const at = lastEnd(text, pattern, limit);
    // A cut that leaves almost nothing in the message is worse than the next kind of boundary.
    if (at > 0 && bytes(text.slice(0, at)) >= max / 4) return at;
  }
  return Math.max(limit, 1);
}

/** `text` split into messages of at most `max` bytes each, at paragraph, then sentence boundaries (trimmed, none empty). */
export function splitAnswer(text: string, max = MESSAGE_MAX_BYTES): string[] {
  const out: string[] = [];
  let rest = text.trim();
  while (rest) {
    const at = cutIndex(rest, max);
    const piece = rest.slice(0, at).trim();
    if (piece) out.push(piece);
    rest = rest.slice(at).trim();
  }
  return out;
}

export interface SplitterOptions {
  /** Messages this answer may use (the sends left minus the reserve); what does not fit is dropped. */
  maxMessages: number;
  /** Bytes per message (WeChat's 2 048). */
  maxBytes?: number;
  /**
   * Send the first message as soon as a paragraph ends (streaming), when at least two messages are allowed: a
   * faster first reply for at most one message more than the tightest packing.
   */
  firstEarly?: boolean;
}

/**
 * Splits an answer into messages as it arrives (streamed deltas, or the whole text at once): each message is
 * given out as soon as it is final. Messages are packed up to `maxBytes`; once `maxMessages` are given out the
 * rest is dropped and counted (`droppedBytes`), and the last message ends with '…'.
 */
export class AnswerSplitter {
  private buffer = '';
  private emitted = 0;
  /** Bytes of the answer that did not fit the messages allowed. */
  droppedBytes = 0;
  private readonly maxBytes: number;

  constructor(private readonly options: SplitterOptions) {
    this.maxBytes = options.maxBytes ?? MESSAGE_MAX_BYTES;
  }

  /** True once every allowed message was given out: the rest of the answer is not needed. */
  get full(): boolean {
    return this.emitted >= this.options.maxMessages;
  }

  /** Messages given out so far. */
  get count(): number {
    return this.emitted;
  }

  /** Adds streamed text; returns the messages that became final. */
  push(delta: string): string[] {
    if (this.full) {
      this.droppedBytes += bytes(delta);
      return [];
    }
    // Whitespace between two messages belongs to neither: a message's size counts from its first character.
    this.buffer = (this.buffer + delta).trimStart();
    const out: string[] = [];
    if (this.emitted === 0 && this.options.firstEarly && this.options.maxMessages >= 2) {
      const early = this.earlyFirst();
      if (early) out.push(early);
    }
    // Once more than a message is buffered, its first message cannot change any more.
    while (!this.full && bytes(this.buffer) > this.maxBytes) out.push(this.take(true));
    if (this.full) this.drop();
    return out;
  }

  /** The answer is complete: the messages left, within the allowance. */
  end(): string[] {
    const out: string[] = [];
    this.buffer = this.buffer.trimEnd();
    while (!this.full && this.buffer) out.push(this.take(bytes(this.buffer) > this.maxBytes));
    this.drop();
    return out;
  }

  /** The first paragraph, once complete and long enough, as the first message. */
  private earlyFirst(): string | undefined {
    PARAGRAPH.lastIndex = 0;
    for (let m = PARAGRAPH.exec(this.buffer); m; m = PARAGRAPH.exec(this.buffer)) {
      const head = this.buffer.slice(0, m.index).trim();
      if (bytes(head) > this.maxBytes) return undefined; // the packing below cuts it
      if (bytes(head) >= FIRST_MESSAGE_MIN_BYTES) {
        this.buffer = this.buffer.slice(m.index + m[0].length).trimStart();
        this.emitted++;
        return head;
      }
    }
    return undefined;
  }

  /** Cuts the next message off the buffer; `more` when text follows it (the last allowed one then gets the mark). */
  private take(more: boolean): string {
    const last = this.emitted + 1 >= this.options.maxMessages;
    const room = last && more ? this.maxBytes - bytes(CLIP_MARK) : this.maxBytes;
    const at = cutIndex(this.buffer, room);
    let message = this.buffer.slice(0, at).trim();
    this.buffer = this.buffer.slice(at).trimStart();
    this.emitted++;
    if (last && this.buffer.trim()) message += CLIP_MARK;
    return message;
  }

  /** Counts what is left once no more messages are allowed. */
  private drop(): void {
    if (!this.full) return;
    this.droppedBytes += bytes(this.buffer.trim());
    this.buffer = '';
  }
}
