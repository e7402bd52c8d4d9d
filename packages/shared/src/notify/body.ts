import { z } from 'zod';
import type { AccountType } from '../wechat/custom-message.js';
import { OPENID_PATTERN } from '../wechat/openid.js';
import { TEMPLATE_ID } from './events.js';

/**
 * What reaches a user outside the customer-service window (docs/wechat-protocol.md §14): a subscribe message
 * (Mini Programs and Mini Games, `subscribe/send`), and for Official Accounts a subscribe notification
 * (`subscribe/bizsend`) or a template message (`template/send`, which needs no grant).
 */
export const NOTIFICATION_KINDS = ['subscribe', 'bizsend', 'template'] as const;
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];

/** The kind of account each kind is for. */
export const KIND_ACCOUNT: Readonly<Record<NotificationKind, AccountType>> = {
  subscribe: 'miniprogram',
  bizsend: 'officialaccount',
  template: 'officialaccount',
};

/** Whether a send of this kind uses one of the user's grants (a template message needs none). */
export const usesGrant = (kind: NotificationKind): boolean => kind !== 'template';

/** The job name of a notification on the outbound queue (beside the replies' `send`). */
export const NOTIFY_JOB = 'notify';

/** Keys a `data` object may have, and their values: WeChat's own are far below these bounds. */
const MAX_DATA_KEYS = 30;
const dataValue = z.object({
  value: z.union([z.string().max(1024), z.number()]),
  /** Template messages only: the value's colour. */
  color: z
    .string()
    .regex(/^#[0-9A-Fa-f]{6}$/)
    .optional(),
});
const data = z
  .record(z.string().regex(/^[A-Za-z_]\w{0,63}$/, 'keys are like thing1'), dataValue)
  .refine((d) => Object.keys(d).length > 0 && Object.keys(d).length <= MAX_DATA_KEYS, {
    message: `1 to ${MAX_DATA_KEYS} keys`,
  });
const path = z.string().min(1).max(1024);

/** Every field WeChat's three bodies have, each bounded; `touser` apart (the send API's fallback has none). */
export const notificationFields = {
  template_id: z.string().regex(TEMPLATE_ID, 'must be a template id: 1 to 128 of A-Z a-z 0-9 _ -'),
  data,
  page: path.optional(),
  miniprogram_state: z.enum(['developer', 'trial', 'formal']).optional(),
  lang: z.enum(['zh_CN', 'en_US', 'zh_HK', 'zh_TW']).optional(),
  url: z.url().max(2048).optional(),
  miniprogram: z.object({ appid: z.string().min(1).max(64), pagepath: path.optional() }).optional(),
  client_msg_id: z.string().min(1).max(64).optional(),
};

/** The fields of each kind's body besides touser, template_id and data. */
const KIND_FIELDS: Readonly<Record<NotificationKind, readonly string[]>> = {
  subscribe: ['page', 'miniprogram_state', 'lang'],
  bizsend: ['page', 'miniprogram'],
  template: ['url', 'miniprogram', 'client_msg_id'],
};

const OPTIONAL_FIELDS = ['page', 'miniprogram_state', 'lang', 'url', 'miniprogram', 'client_msg_id'] as const;

/** A notification's body as WeChat takes it. */
export const notificationBody = z.object({ touser: z.string().regex(OPENID_PATTERN), ...notificationFields });
export type NotificationBody = z.infer<typeof notificationBody>;

/**
 * A notification as the admin API takes it, without its account and user (the send API's `fallback`; the
 * notifications endpoint adds `appId` and `touser`): the kind (default `subscribe`), WeChat's fields, and
 * `ignoreGrant` to send without a grant the ledger knows of.
 */
export const notificationRequest = z.object({
  kind: z.enum(NOTIFICATION_KINDS).optional(),
  ignoreGrant: z.boolean().optional(),
  ...notificationFields,
});

/** The field of another kind a body has (`url` in a subscribe message), if any: WeChat's bodies differ. */
export function foreignField(kind: NotificationKind, body: Readonly<Record<string, unknown>>): string | undefined {
  return OPTIONAL_FIELDS.find((field) => body[field] !== undefined && !KIND_FIELDS[kind].includes(field));
}

/** A notification queued for one user: its kind, WeChat's body, and whether it goes without a grant. */
export interface NotificationJobData {
  appId: string;
  touser: string;
  /** The job id (as `msgKey` of replies: logs and the timeline name the job by it). */
  msgKey: string;
  kind: NotificationKind;
  notification: NotificationBody;
  /** `api`: POST /api/v1/notifications; `fallback`: the send API's fallback when the window was closed. */
  source: 'api' | 'fallback';
  receivedAt: number;
  /** Send even without a grant the ledger knows of (WeChat answers 43101 if it knows of none either). */
  ignoreGrant?: boolean;
}

const jobData = z.object({
  appId: z.string().min(1).max(64),
  touser: z.string().regex(OPENID_PATTERN),
  msgKey: z.string().min(1).max(200),
  kind: z.enum(NOTIFICATION_KINDS),
  notification: notificationBody,
  source: z.enum(['api', 'fallback']),
  receivedAt: z.number(),
  ignoreGrant: z.boolean().optional(),
});

/**
 * A notification job's data, checked (job data is untrusted: anyone with Redis access can write it): the body
 * valid for its kind and addressed to the job's user. Throws an Error with a short reason otherwise.
 */
export function readNotificationJob(value: unknown): NotificationJobData {
  const read = jobData.safeParse(value);
  if (!read.success) {
    const issue = read.error.issues[0];
    throw new Error(`notification job: ${issue?.path.join('.') || 'data'}: ${issue?.message ?? 'invalid'}`);
  }
  const job = read.data;
  const foreign = foreignField(job.kind, job.notification);
  if (foreign) throw new Error(`notification job: ${foreign} is not a field of a ${job.kind} body`);
  if (job.notification.touser !== job.touser) throw new Error('notification job: touser differs from the body');
  return job;
}
