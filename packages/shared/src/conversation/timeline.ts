import { subscriptionSummary } from '../notify/events.js';

/** The timeline's caps: entries per user (0 = no timeline) and the age after which entries are dropped. */
export interface TimelineOptions {
  entries: number;
  maxAgeMs: number;
}

/** 200 entries, 7 days: a few hundred bytes per entry, so about 50 kB for the busiest user. */
export const DEFAULT_TIMELINE: TimelineOptions = { entries: 200, maxAgeMs: 7 * 24 * 3600_000 };

/** Longest summary kept in a timeline entry: enough to recognise a message, never a whole one. */
const SUMMARY_MAX = 40;

/** One event of a user's conversation, as the CLI and the API show it. */
export interface TimelineEntry {
  at: string;
  direction: 'in' | 'out';
  kind: string;
  summary: string;
  jobId: string;
  result: string;
}

/** An outbound timeline entry: the reply's kind and gist, and what became of it. */
export interface OutEntry {
  kind: string;
  summary: string;
  jobId: string;
  result: string;
}

/** An entry as stored (JSON): when, direction, kind, summary, job id, result. */
interface StoredEntry {
  t?: number;
  d?: string;
  k?: string;
  s?: string;
  j?: string;
  r?: string;
}

export const clipSummary = (value: unknown, max = SUMMARY_MAX): string => {
  const s = typeof value === 'string' ? value.replace(/\s+/g, ' ').trim() : '';
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
};

/** A WeCom system event's gist: which send failed, which message was recalled, who took the session. */
function wecomEventSummary(message: Record<string, unknown>): string | undefined {
  if (message.FailMsgId) return `send ${String(message.FailMsgId)} failed (type ${String(message.FailType ?? '?')})`;
  if (message.RecallMsgId) return `recalled ${String(message.RecallMsgId)}`;
  if (message.ChangeType) return `change ${String(message.ChangeType)} → ${String(message.NewServicer ?? '-')}`;
  return undefined;
}

/** The kind and a short preview of an inbound message (never media ids or whole texts). */
function describeInbound(message: Record<string, unknown>): { kind: string; summary: string } {
  if (message.MsgType === 'event') {
    const event = clipSummary(message.Event, 40) || 'event';
    const wecom = message.Origin === undefined ? undefined : wecomEventSummary(message);
    if (wecom) return { kind: event, summary: clipSummary(wecom, 80) };
    // A subscription event says which templates and what the user chose (or how a send ended).
    return { kind: event, summary: clipSummary(message.EventKey ?? subscriptionSummary(message)) };
  }
  const kind = clipSummary(message.MsgType, 40) || '?';
  return { kind, summary: clipSummary(message.Content ?? message.Title ?? message.Label ?? message.Recognition) };
}

/** The kind and a short preview of a custom/send body. */
export function describeReply(item: { msgtype?: unknown; [field: string]: unknown }): {
  kind: string;
  summary: string;
} {
  const kind = typeof item.msgtype === 'string' ? item.msgtype : '?';
  const body = item[kind];
  const fields = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  return { kind, summary: clipSummary(fields.content ?? fields.title) };
}

/** What a WeCom agent's message (the servicer who sent it) or a failed send's event says in its entry. */
function wecomResult(message: Record<string, unknown>): string | undefined {
  if (message.Origin === '5') return clipSummary(`agent ${String(message.Servicer ?? '')}`.trim());
  return message.Event === 'msg_send_fail' ? 'send failed' : undefined;
}

/** The stored entry of an inbound message, and the needle that finds it again (its job id). */
export function inboundEntry(message: Record<string, unknown>, jobId: string, at: number, transferred = false) {
  const { kind, summary } = describeInbound(message);
  // A message the ingress transferred says so itself: its job, which says it too, is kept only 24 h. A WeCom
  // agent's message (origin 5) went out to the customer, from a person; a failed send says so. (`j` stays last:
  // the needle below finds the entry by it.)
  const agent = message.Origin === '5';
  const result = transferred ? 'transferred' : wecomResult(message);
  const stored: StoredEntry = {
    t: at,
    d: agent ? 'out' : 'in',
    k: kind,
    s: summary,
    ...(result ? { r: result } : {}),
    j: jobId,
  };
  return {
    entry: JSON.stringify(stored),
    needle: `,"j":${JSON.stringify(jobId)}}`,
  };
}

/** The stored entry of a send's outcome. */
export function outboundEntry(entry: OutEntry, at: number): string {
  const stored: StoredEntry = { t: at, d: 'out', k: entry.kind, s: clipSummary(entry.summary), j: entry.jobId };
  return JSON.stringify({ ...stored, r: entry.result });
}

/** Stored entries as shown, newest last; entries older than `oldest` (ms) and any that are not ours left out. */
export function readTimeline(raw: readonly string[], oldest: number): TimelineEntry[] {
  const timeline: TimelineEntry[] = [];
  for (const line of raw) {
    let e: StoredEntry;
    try {
      e = JSON.parse(line);
    } catch {
      continue; // not ours: skip rather than fail the whole view
    }
    if (typeof e.t !== 'number' || e.t < oldest) continue;
    timeline.push({
      at: new Date(e.t).toISOString(),
      direction: e.d === 'out' ? 'out' : 'in',
      kind: e.k ?? '',
      summary: e.s ?? '',
      jobId: e.j ?? '',
      result: e.r ?? (e.d === 'out' ? '' : 'received'),
    });
  }
  return timeline;
}
