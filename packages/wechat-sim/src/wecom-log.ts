import { randomBytes } from 'node:crypto';
import { isRecord } from './json-body.js';

/** A customer's message (origin 3). */
export interface WeComCustomerItem {
  msgid: string;
  open_kfid: string;
  external_userid: string;
  send_time: number;
  origin: 3;
  msgtype: 'text' | 'image';
  text?: { content: string };
  image?: { media_id: string };
}

/** A system event (origin 4); the fields besides these depend on event_type. */
export interface WeComEventItem {
  msgid: string;
  send_time: number;
  origin: 4;
  msgtype: 'event';
  event: { event_type: string; open_kfid: string; external_userid: string } & Record<string, unknown>;
}

/** A message a servicer wrote in the WeCom client (origin 5). */
export interface WeComAgentItem {
  msgid: string;
  open_kfid: string;
  external_userid: string;
  send_time: number;
  origin: 5;
  servicer_userid: string;
  msgtype: 'text';
  text: { content: string };
}

export type WeComItem = WeComCustomerItem | WeComEventItem | WeComAgentItem;

/** What sync_msg answers on success. */
export interface WeComPage {
  next_cursor: string;
  has_more: 0 | 1;
  msg_list: WeComItem[];
}

/** WeCom keeps messages 3 days: older ones are never pulled. */
export const RETENTION_SECONDS = 3 * 24 * 3600;

interface Log {
  /** Random per log: a cursor from another log (another kf account, or before a reset) is refused. */
  epoch: string;
  items: WeComItem[];
}

/**
 * The ordered messages and events per (corp, open_kfid) that sync_msg pages through. A cursor names a position
 * in one log; it is base64url JSON with the log's epoch, so that it is opaque and cannot be made up or carried
 * to another log (real cursors are opaque strings too). Messages sent through the API are never appended.
 */
export class WeComLog {
  private readonly logs = new Map<string, Log>();
  /** msgids are decimal strings past 2^53: a client reading them as numbers would lose digits, as with WeCom. */
  private seq = 7_300_000_000_000_000_000n;

  reset(): void {
    this.logs.clear();
  }

  nextMsgId(): string {
    this.seq += 1n;
    return `from_msgid_${this.seq}`;
  }

  private logOf(corpId: string, openKfId: string): Log {
    const key = `${corpId}:${openKfId}`;
    let log = this.logs.get(key);
    if (!log) {
      log = { epoch: randomBytes(6).toString('hex'), items: [] };
      this.logs.set(key, log);
    }
    return log;
  }

  append(corpId: string, openKfId: string, item: WeComItem): WeComItem {
    this.logOf(corpId, openKfId).items.push(item);
    return item;
  }

  /** Every item of the log, in order (tests). */
  items(corpId: string, openKfId: string): readonly WeComItem[] {
    return this.logOf(corpId, openKfId).items;
  }

  /**
   * Up to `limit` items after `cursor` (from the start without one), skipping those older than 3 days at
   * `nowSeconds`; undefined when the cursor is not one of this log's.
   */
  page(corpId: string, openKfId: string, cursor: string | undefined, limit: number, nowSeconds: number) {
    const log = this.logOf(corpId, openKfId);
    const start = cursor === undefined ? 0 : positionOf(log, cursor);
    if (start === undefined) return undefined;
    const cutoff = nowSeconds - RETENTION_SECONDS;
    const msgList: WeComItem[] = [];
    let i = start;
    for (; i < log.items.length && msgList.length < limit; i++) {
      const item = log.items[i];
      if (item && item.send_time >= cutoff) msgList.push(item);
    }
    const hasMore = log.items.slice(i).some((item) => item.send_time >= cutoff);
    const page: WeComPage = { next_cursor: cursorOf(log, i), has_more: hasMore ? 1 : 0, msg_list: msgList };
    return page;
  }
}

const cursorOf = (log: Log, position: number) =>
  Buffer.from(JSON.stringify({ e: log.epoch, p: position })).toString('base64url');

/** The position a cursor names in this log, or undefined for anything this log did not hand out. */
function positionOf(log: Log, cursor: string): number | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!isRecord(parsed) || parsed.e !== log.epoch) return undefined;
  const { p } = parsed;
  return typeof p === 'number' && Number.isInteger(p) && p >= 0 && p <= log.items.length ? p : undefined;
}
