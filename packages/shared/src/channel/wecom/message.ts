import { createHash } from 'node:crypto';
import { z } from 'zod';
import { isRecord } from '../../record.js';
import { MessageFormatError } from '../../wechat/errors.js';
import type { InboundMessage } from '../../wechat/message.js';
import { OPENID_PATTERN } from '../../wechat/openid.js';

/** The callback event that says "messages wait for a pull" (its `Token` makes the pull faster for 10 minutes). */
export const PULL_NOTICE_EVENT = 'kf_msg_or_event';

/**
 * Whether a stored message is a WeCom pull notice (the ingress stores the decrypted callback as one). A pulled
 * item never is: it has an Origin (and pulledMessage never names this event).
 */
export const isPullNotice = (message: { MsgType?: unknown; Event?: unknown; Origin?: unknown }): boolean =>
  message.MsgType === 'event' && message.Event === PULL_NOTICE_EVENT && message.Origin === undefined;

/**
 * A pull notice as its job's message. FromUserName is the open_kfid: every notice of one kf account lands on one
 * shard, where its pull state lives. `fields`: what names the job (MsgID) and what the pull uses (Token).
 */
export function noticeMessage(
  corpId: string,
  openKfId: string,
  createTime: string,
  fields: Record<string, string>,
): InboundMessage {
  return {
    ToUserName: corpId,
    FromUserName: openKfId,
    CreateTime: createTime,
    MsgType: 'event',
    Event: PULL_NOTICE_EVENT,
    OpenKfId: openKfId,
    ...fields,
  };
}

/**
 * The notice a worker makes itself for the catch-up pull (WECOM_CATCHUP_SECONDS): no Token (the pull uses the
 * newest one a callback left, while it is valid); `CatchUp` says no callback came. Its MsgID names the open_kfid
 * and the period, so the workers that make it in one period make one job.
 */
export function catchUpNotice(corpId: string, openKfId: string, period: number, nowMs: number): InboundMessage {
  const fields = { MsgID: `catchup-${openKfId}-${period}`, CatchUp: '1' };
  return noticeMessage(corpId, openKfId, String(Math.floor(nowMs / 1000)), fields);
}

/** WeCom ids (open_kfid, external_userid, servicer ids): our OpenID charset and bound. */
const wecomId = z.string().regex(OPENID_PATTERN);
const sendTime = z.number().int().nonnegative();

/** One `msg_list` item of kf/sync_msg, as far as wx-kf reads it (the rest passes through as fields). */
const item = z.looseObject({
  msgid: z.string().min(1).max(4096), // a long one is hashed (safeMsgId), not refused: the message counts
  send_time: sendTime,
  origin: z.union([z.literal(3), z.literal(4), z.literal(5)]),
  msgtype: z.string().min(1).max(32),
  open_kfid: wecomId.optional(),
  external_userid: wecomId.optional(),
  servicer_userid: wecomId.optional(),
});

/** What `pull` keeps of a page: the next cursor, whether more wait, the items (each still to be read). */
export const syncAnswer = z.looseObject({
  next_cursor: z.string().max(4096).default(''),
  has_more: z.union([z.literal(0), z.literal(1), z.boolean()]).transform(Boolean),
  msg_list: z.array(z.unknown()).max(1000),
});
export type SyncPage = z.output<typeof syncAnswer>;

/** A msgid as a job id's part: WeCom's own when it is plain, else its digest (a job id must never hold `:`). */
function safeMsgId(msgid: string): string {
  return /^[A-Za-z0-9_-]{1,64}$/.test(msgid)
    ? msgid
    : `h${createHash('sha256').update(msgid).digest('hex').slice(0, 40)}`;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v.slice(0, 2048) : undefined);
const num = (v: unknown): string | undefined => (typeof v === 'number' && Number.isFinite(v) ? String(v) : undefined);

/** Drops the fields a message does not have (an InboundMessage holds strings only). */
function defined(fields: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) out[k] = v;
  return out;
}

/** The customer's or agent's content, in WeChat's field names (what rules and the timeline read). */
function contentFields(msgtype: string, raw: Record<string, unknown>): Record<string, string | undefined> {
  const body = isRecord(raw[msgtype]) ? raw[msgtype] : {};
  switch (msgtype) {
    case 'text':
      return { Content: str(body.content), MenuId: str(body.menu_id) };
    case 'image':
    case 'voice':
    case 'video':
    case 'file':
      return { MediaId: str(body.media_id) };
    case 'location':
      return { Location_X: num(body.latitude), Location_Y: num(body.longitude), Label: str(body.name) };
    case 'link':
      return { Title: str(body.title), Url: str(body.url) };
    default:
      return {};
  }
}

/** An origin-4 event's fields, in wx-kf's names (the handoff reads ChangeType and NewServicer). */
function eventFields(raw: Record<string, unknown>): Record<string, string | undefined> {
  const event = isRecord(raw.event) ? raw.event : {};
  const type = str(event.event_type);
  return {
    // A pulled event is never a pull notice: only the ingress's callback is.
    Event: type && type !== PULL_NOTICE_EVENT ? type : 'unknown',
    WelcomeCode: str(event.welcome_code),
    Scene: str(event.scene),
    ChangeType: num(event.change_type),
    OldServicer: str(event.old_servicer_userid),
    NewServicer: str(event.new_servicer_userid),
    MsgCode: str(event.msg_code),
    FailMsgId: str(event.fail_msgid),
    FailType: num(event.fail_type),
    RecallMsgId: str(event.recall_msgid),
    OpenKfId: str(event.open_kfid),
    ExternalUserId: str(event.external_userid),
  };
}

/**
 * A pulled `msg_list` item as the message the conversation pipeline reads, keyed by the customer: FromUserName is
 * the `external_userid`, ToUserName and OpenKfId the `open_kfid`, CreateTime the `send_time`, MsgId (MsgID for an
 * event) the `msgid`, Origin 3 (customer), 4 (system event) or 5 (agent). Undefined for an item that names no
 * customer or is malformed: it is counted and skipped, never stored.
 */
export function pulledMessage(raw: unknown, openKfId: string): InboundMessage | undefined {
  const parsed = item.safeParse(raw);
  if (!parsed.success || !isRecord(raw)) return undefined;
  const m = parsed.data;
  const event = m.origin === 4 && m.msgtype === 'event' ? eventFields(raw) : undefined;
  const user = event?.ExternalUserId ?? m.external_userid;
  if (!user || !OPENID_PATTERN.test(user)) return undefined;
  const kf = event?.OpenKfId ?? m.open_kfid ?? openKfId;
  const id = safeMsgId(m.msgid);
  const fields = event
    ? { ...event, ExternalUserId: undefined, MsgID: id }
    : { ...contentFields(m.msgtype, raw), MsgId: id };
  return {
    ...defined({ ...fields, OpenKfId: kf, Origin: String(m.origin), Servicer: m.servicer_userid }),
    ToUserName: kf,
    FromUserName: user,
    CreateTime: String(m.send_time),
    MsgType: event ? 'event' : m.msgtype,
  };
}

/** The decrypted callback, checked: a pull notice for an open_kfid, with its Token (or none). */
export interface PullNotice {
  openKfId: string;
  token?: string | undefined;
}

/** A sync Token as it is kept: printable ASCII, bounded (WeCom documents no length). */
const SYNC_TOKEN = /^[\x21-\x7e]{1,512}$/;

/**
 * The notice a decrypted callback is, or undefined when it is some other WeCom event (answered, not stored). A
 * notice without a usable Token still pulls (without one, slower); one without a usable OpenKfId is refused.
 */
export function readPullNotice(fields: Record<string, unknown>): PullNotice | undefined {
  if (!isPullNotice(fields)) return undefined;
  const { OpenKfId, Token } = fields;
  if (typeof OpenKfId !== 'string' || !OPENID_PATTERN.test(OpenKfId)) {
    throw new MessageFormatError('kf_msg_or_event without a valid OpenKfId');
  }
  return { openKfId: OpenKfId, token: typeof Token === 'string' && SYNC_TOKEN.test(Token) ? Token : undefined };
}
