import type { AccountConfig } from '@wx-kf/shared/config';
import { clip } from '@wx-kf/shared/log';
import type { InboundJobData, OutboundJobData, ReplyPlan } from '@wx-kf/shared/queue';
import { isRecord } from '@wx-kf/shared/record';
import { MessageFormatError, OPENID_PATTERN, type ReplyItem, validateReply } from '@wx-kf/shared/wechat';
import { UnrecoverableError } from 'bullmq';

// Job data is untrusted: anyone with Redis access (or a dashboard that could edit jobs) can write it. Everything
// the worker relies on is checked here before anything is sent, and a bad job fails at once with a short reason.

/** Replies one job may carry: the send API's limit (WeChat allows about 20 messages per user message). */
export const MAX_JOB_REPLIES = 20;
const MAX_KEY = 200;
const SOURCES: readonly OutboundJobData['source'][] = ['rules', 'handler', 'api', 'ai'];

/** Whether `value` is an object (an array too): its properties can be read by name, each as unknown. */
const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;

const isSource = (value: unknown): value is OutboundJobData['source'] => SOURCES.some((source) => source === value);

/** A failed reason: bounded, whatever the job held. */
export function invalid(reason: string): UnrecoverableError {
  return new UnrecoverableError(clip(reason, 200));
}

/** A value for a reason: a short JSON rendering, never the whole of what a job held. */
const show = (value: unknown) => {
  const text = typeof value === 'string' ? JSON.stringify(value) : typeof value;
  return clip(text, 40);
};

/** Replies that are valid custom/send bodies for the account kind, checked with the send API's own schema. */
export function checkReplies(value: unknown, account: AccountConfig): ReplyItem[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_JOB_REPLIES) {
    throw invalid(`replies must be a list of 1 to ${MAX_JOB_REPLIES} custom/send bodies`);
  }
  return value.map((item, i) => {
    try {
      // The parsed value, not the input: it carries only the fields the schema knows (never a `file`).
      return validateReply(item, account.type);
    } catch (error) {
      if (error instanceof MessageFormatError) throw invalid(`reply ${i}: ${error.message}`);
      throw error;
    }
  });
}

function checkAccount(appId: unknown, accounts: Map<string, AccountConfig>): AccountConfig {
  const account = typeof appId === 'string' ? accounts.get(appId) : undefined;
  if (!account) throw invalid(`account ${show(appId)} is not configured on this worker`);
  return account;
}

function checkSent(value: unknown, replies: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > replies) {
    throw invalid(`sent must be an integer from 0 to ${replies}, not ${show(value)}`);
  }
  return value;
}

function checkKey(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_KEY) {
    throw invalid(`msgKey must be a string of 1 to ${MAX_KEY} characters`);
  }
  return value;
}

function checkUser(value: unknown, field: string): string {
  if (typeof value !== 'string' || !OPENID_PATTERN.test(value))
    throw invalid(`${field} ${show(value)} is not an OpenID`);
  return value;
}

const receivedAt = (value: unknown) => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);

function checkSource(value: unknown): OutboundJobData['source'] {
  if (!isSource(value)) throw invalid(`source ${show(value)} is not known`);
  return value;
}

/** An outbound job's data, checked: a configured account, an OpenID, valid replies and progress. */
export function checkOutboundJob(
  data: unknown,
  accounts: Map<string, AccountConfig>,
): { data: OutboundJobData; account: AccountConfig } {
  if (!isObject(data)) throw invalid('job data is not an object');
  const d = data;
  const account = checkAccount(d.appId, accounts);
  const replies = checkReplies(d.replies, account);
  return {
    account,
    data: {
      appId: account.appId,
      touser: checkUser(d.touser, 'touser'),
      msgKey: checkKey(d.msgKey),
      replies,
      sent: checkSent(d.sent, replies.length),
      source: checkSource(d.source),
      receivedAt: receivedAt(d.receivedAt),
      ...(d.ignoreWindow === true ? { ignoreWindow: true } : {}),
      ...(d.ignoreHandoff === true ? { ignoreHandoff: true } : {}),
      ...openKfIdOf(d, account),
    },
  };
}

/**
 * A WeCom reply's open_kfid (required for a wecom-kf account, else it could not be sent) and event code (the
 * welcome's); neither for another account.
 */
function openKfIdOf(d: Record<string, unknown>, account: AccountConfig): { openKfId?: string; code?: string } {
  if (account.type !== 'wecom-kf') return {};
  const code = typeof d.code === 'string' && /^[\x21-\x7e]{1,512}$/.test(d.code) ? { code: d.code } : {};
  return { openKfId: checkUser(d.openKfId, 'openKfId'), ...code };
}

/** An inbound job's data, checked: a configured account, a message from an OpenID, and a valid stored plan. */
export function checkInboundJob(
  data: unknown,
  accounts: Map<string, AccountConfig>,
): { data: InboundJobData; account: AccountConfig; touser: string } {
  if (!isObject(data)) throw invalid('job data is not an object');
  const d = data;
  const account = checkAccount(d.appId, accounts);
  const message = d.message;
  if (!isRecord(message)) throw invalid('message is not an object');
  const touser = checkUser(message.FromUserName, 'message.FromUserName');
  if (typeof message.MsgType !== 'string') throw invalid('message.MsgType is not a string');
  // A WeCom customer's replies go to the open_kfid they wrote to: without one, none could be sent.
  if (account.type === 'wecom-kf') checkUser(message.OpenKfId, 'message.OpenKfId');
  let plan: ReplyPlan | undefined;
  if (d.plan !== undefined) {
    const p = d.plan;
    if (!isObject(p)) throw invalid('plan is not an object');
    const replies = checkReplies(p.replies, account);
    plan = { replies, source: checkSource(p.source), sent: checkSent(p.sent, replies.length) };
    if (p.ignoreHandoff === true) plan.ignoreHandoff = true;
  }
  return {
    account,
    touser,
    data: {
      // The fields the worker does not read (the push's mode and format, the message's own) pass as stored.
      ...(d as unknown as InboundJobData),
      appId: account.appId,
      msgKey: checkKey(d.msgKey),
      transferred: d.transferred === true,
      receivedAt: receivedAt(d.receivedAt) ?? Date.now(),
      ...(plan ? { plan } : {}),
    },
  };
}

/** A job's id: BullMQ gives every job it hands a processor (or returns from `add`) one. */
export function jobIdOf(job: { id?: string | undefined }): string {
  if (job.id === undefined) throw invalid('the job has no id');
  return job.id;
}
