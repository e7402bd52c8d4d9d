// Apart from the parsers (body.ts): the queue contracts name jobs by this key, and the queue CLI loads them.
import { createHash } from 'node:crypto';
import type { FieldValue } from './body.js';
import type { InboundMessage } from './message.js';

/** The fields in one canonical text (keys sorted at every level), so equal messages digest alike. */
function canonical(value: FieldValue | undefined | { readonly [field: string]: FieldValue | undefined }): string {
  if (typeof value === 'string' || value === undefined) return JSON.stringify(value ?? '');
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
}

/** The event's own id, where WeChat gives it one (job results carry the MsgID or publish_id of the job). */
function eventId(message: InboundMessage): string | undefined {
  if (typeof message.MsgID === 'string') return message.MsgID;
  const info = message.PublishEventInfo;
  if (info && typeof info === 'object' && !Array.isArray(info) && typeof info.publish_id === 'string') {
    return info.publish_id;
  }
  return undefined;
}

/**
 * The de-duplication key of a message within one account: its MsgId (`MsgID` accepted too); for an event its
 * own id where it has one; otherwise a digest of every field. Re-deliveries of one push are identical, so they
 * share the key; two different events from one user in one second (two template results, a kf switch to
 * another agent, another location) differ in some field, so they never do.
 */
export function dedupKey(message: InboundMessage): string {
  if (message.MsgType !== 'event') {
    const id = message.MsgId ?? message.MsgID;
    if (typeof id === 'string') return `m:${id}`;
  } else {
    const id = eventId(message);
    if (id !== undefined) return `e:${message.Event}:${id}`;
  }
  return `d:${createHash('sha256').update(canonical(message)).digest('hex')}`;
}
