import { type FieldLimit, replyFieldLimit } from '../wechat/custom-message.js';
import type { InboundMessage } from '../wechat/message.js';
import type { ReplyTemplate } from './schema.js';

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_.]+)\s*\}\}/g;

/**
 * A reply template filled in for a message: `{{Field}}` from the message and `{{match.N}}` from the regex groups,
 * in every string of the reply but a `file` (a fixed path resolved at load: message content must never choose a
 * file). The names of the fields the message lacked are added to `missing`.
 */
export function renderReply(
  template: ReplyTemplate,
  message: InboundMessage,
  match: string[],
  missing: Set<string>,
): ReplyTemplate {
  // `msgtype` is one of WeChat's names (checked at load), never a template: it renders as itself.
  return { ...renderFields(template, [], message, match, missing), msgtype: template.msgtype };
}

/** A value of a reply rendered; `path` is where it sits in the reply, which says how long a string may be. */
function render(
  value: unknown,
  path: (string | number)[],
  message: InboundMessage,
  match: string[],
  missing: Set<string>,
): unknown {
  if (typeof value === 'string') return fill(value, replyFieldLimit(path), message, match, missing);
  if (Array.isArray(value)) return value.map((v, i) => render(v, [...path, i], message, match, missing));
  if (typeof value === 'object' && value !== null) return renderFields(value, path, message, match, missing);
  return value;
}

/** An object's fields rendered, but a `file`. */
function renderFields(
  value: object,
  path: (string | number)[],
  message: InboundMessage,
  match: string[],
  missing: Set<string>,
): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, k === 'file' ? v : render(v, [...path, k], message, match, missing)]),
  );
}

/**
 * One template string filled in. The template itself was checked against the limit at load; the fields that
 * fill it are clipped so the result fits too (a user's long message must not make the reply unsendable): each
 * field gets an equal share of the room the template leaves, and what a shorter field does not use goes to the
 * others.
 */
function fill(template: string, limit: FieldLimit, message: InboundMessage, match: string[], missing: Set<string>) {
  // split() with a capturing pattern: literal text at even indices, field names at odd ones.
  const parts = template.split(PLACEHOLDER);
  if (parts.length === 1) return template;
  const values = parts.map((part, i) => {
    if (i % 2 === 0) return part;
    const field = part.startsWith('match.') ? match[Number(part.slice(6))] : message[part];
    if (typeof field === 'string' && field !== '') return field;
    missing.add(part);
    return '';
  });
  const fixed = values.filter((_, i) => i % 2 === 0).join('');
  const fields = values.filter((_, i) => i % 2 === 1);
  const shares = share(
    fields.map((f) => size(f, limit.unit)),
    limit.max - size(fixed, limit.unit),
  );
  let n = 0;
  return values.map((v, i) => (i % 2 === 0 ? v : clipTo(v, shares[n++] ?? 0, limit.unit))).join('');
}

const size = (s: string, unit: FieldLimit['unit']) => (unit === 'utf8' ? Buffer.byteLength(s, 'utf8') : s.length);

/** Splits `room` among fields of these sizes, smallest first: each takes what it needs, up to an equal share. */
function share(sizes: number[], room: number): number[] {
  const out = [...sizes];
  const order = sizes.map((need, i) => ({ need, i })).sort((a, b) => a.need - b.need);
  let left = Math.max(room, 0);
  for (const [k, { need, i }] of order.entries()) {
    const given = Math.min(need, Math.floor(left / (order.length - k)));
    out[i] = given;
    left -= given;
  }
  return out;
}

const MARK = '…';

/**
 * `value` cut to at most `max` (bytes of UTF-8 or UTF-16 code units) between two code points, so no character
 * or surrogate pair is split, and the cut marked with '…' when the mark fits.
 */
function clipTo(value: string, max: number, unit: FieldLimit['unit']): string {
  if (size(value, unit) <= max) return value;
  const mark = size(MARK, unit) <= max ? MARK : '';
  let room = max - size(mark, unit);
  let kept = '';
  for (const char of value) {
    room -= size(char, unit);
    if (room < 0) break;
    kept += char;
  }
  return kept + mark;
}
