import {
  errcodeRule,
  type NotifyClient,
  TokenUnavailableError,
  TransportError,
  WeChatApiError,
} from '@wx-kf/shared/api';
import type { AccountConfig } from '@wx-kf/shared/config';
import type { Conversations } from '@wx-kf/shared/conversation';
import type { Logger } from '@wx-kf/shared/log';
import { KIND_ACCOUNT, type NotificationJobData, readNotificationJob, usesGrant } from '@wx-kf/shared/notify';
import { keyspaceOf, type RedisClient } from '@wx-kf/shared/redis';
import { DelayedError, type Job } from 'bullmq';
import type { Counter } from 'prom-client';
import { invalid } from './job-data.js';
import { QUOTA_PAUSE_MS } from './send.js';

export interface NotifyDeps {
  notify: NotifyClient;
  conversations: Conversations;
  redis: RedisClient;
  accounts: ReadonlyMap<string, AccountConfig>;
  /** `wxkf_notifications_total{app_id,template,outcome}`. */
  outcomes: Counter<'app_id' | 'template' | 'outcome'>;
  logger: Logger;
}

/** What the processor needs of a BullMQ job (an outbound job named `notify`). */
type NotifyJob = Pick<Job, 'id' | 'data' | 'attemptsMade' | 'opts' | 'moveToDelayed'>;

/** A notification job's data, checked: a configured account of the kind's type, and WeChat's body for the kind. */
function checked(value: unknown, accounts: ReadonlyMap<string, AccountConfig>): NotificationJobData {
  let data: NotificationJobData;
  try {
    data = readNotificationJob(value);
  } catch (error) {
    throw invalid(error instanceof Error ? error.message : 'notification job: invalid');
  }
  const account = accounts.get(data.appId);
  if (!account) throw invalid(`account ${data.appId} is not configured on this worker`);
  if (KIND_ACCOUNT[data.kind] !== account.type)
    throw invalid(`a ${data.kind} notification is not for a ${account.type}`);
  return data;
}

/** Counts a notification's outcome (`wxkf_notifications_total`). */
function count(deps: NotifyDeps, data: NotificationJobData, outcome: string): void {
  deps.outcomes.inc({ app_id: data.appId, template: data.notification.template_id, outcome });
}

/** Records a notification's outcome in the user's timeline. */
function record(deps: NotifyDeps, data: NotificationJobData, result: string) {
  return deps.conversations.settle(data.appId, data.touser, {
    entry: { kind: data.kind, summary: data.notification.template_id, jobId: data.msgKey, result },
  });
}

/** A refused or failed send: the grant given back (or cleared), then what ends this attempt is thrown. */
async function refused(
  deps: NotifyDeps,
  job: NotifyJob,
  token: string | undefined,
  data: NotificationJobData,
  error: unknown,
): Promise<never> {
  const { logger } = deps;
  const grants = deps.conversations.grants;
  const { appId, touser } = data;
  const template = data.notification.template_id;
  const giveBack = () => grants.giveBack(appId, touser, template, job.id ?? data.msgKey);
  const lastTry = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
  if (error instanceof WeChatApiError) {
    const rule = errcodeRule(error.errcode);
    // The ledger learns from WeChat: 43101 means the user has no grant of this template at all.
    await (rule.grant === 'cleared' ? grants.clear(appId, touser, template) : giveBack());
    logger.warn(
      { appId, msgKey: data.msgKey, template, errcode: error.errcode, errmsg: error.errmsg },
      'notification refused',
    );
    if (rule.action === 'retry' || rule.action === 'refresh_token') {
      count(deps, data, 'retry');
      if (lastTry) await record(deps, data, `${error.errcode} ${error.errmsg}`.slice(0, 80));
      throw error;
    }
    if (rule.action === 'pause_account') {
      count(deps, data, 'retry');
      await job.moveToDelayed(Date.now() + QUOTA_PAUSE_MS, token);
      throw new DelayedError();
    }
    count(deps, data, String(error.errcode));
    await record(deps, data, `${error.errcode} ${error.errmsg}`.slice(0, 80));
    throw invalid(`${error.errcode} ${error.errmsg}`);
  }
  if (error instanceof TokenUnavailableError) {
    await giveBack();
    await job.moveToDelayed(Date.now() + error.retryAfterMs, token);
    throw new DelayedError();
  }
  // An HTTP error status is an answer (nothing sent); a timeout or a dropped connection may have been delivered.
  if (error instanceof TransportError) {
    if (error.kind === 'http') await giveBack();
    count(deps, data, 'transport');
    if (lastTry) await record(deps, data, `transport: ${error.kind}`);
  }
  throw error;
}

/**
 * Sends a notification job (docs/operating.md, "Notifications"): a job like any send. Its grant is taken first
 * (once per job: a retry, or a job whose grant the admin API took, holds it already); without one the job fails
 * at once and WeChat is not called (unless `ignoreGrant`). WeChat's answer decides the rest: accepted, the grant
 * stays used; 43101 clears the user's grants of the template (the errcode's row) and, like 47003, 41030 and every
 * other permanent refusal, fails the job at once with WeChat's reason; a transient refusal gives the grant back
 * and is retried; a timeout keeps it (it may have been delivered). The outcome goes to the timeline and metrics.
 */
export function notificationProcessor(deps: NotifyDeps) {
  const { notify, conversations, redis, accounts, logger } = deps;
  const grants = conversations.grants;

  return async (job: NotifyJob, token?: string): Promise<{ sent: true; msgid?: string }> => {
    const data = checked(job.data, accounts);
    const { appId, touser, kind, msgKey } = data;
    const template = data.notification.template_id;
    // An operator's pause (or 45009 on custom/send) holds notifications too.
    const paused = await redis.pttl(keyspaceOf(redis).paused(appId));
    if (paused !== -2) {
      await job.moveToDelayed(Date.now() + (paused > 0 ? paused : 60_000), token);
      throw new DelayedError();
    }
    if (usesGrant(kind)) {
      const taken = await grants.take(appId, touser, template, job.id ?? msgKey);
      if (taken === 'none' && !data.ignoreGrant) {
        count(deps, data, 'no_grant');
        await record(deps, data, 'refused: no grant');
        logger.warn({ appId, msgKey, template }, 'notification refused by the grant ledger');
        throw invalid(`no_grant: the user has no grant of template ${template} ("ignoreGrant": true sends anyway)`);
      }
    }
    let msgid: string | undefined;
    try {
      ({ msgid } = await notify.send(appId, kind, data.notification));
    } catch (error) {
      return refused(deps, job, token, data, error);
    }
    count(deps, data, 'sent');
    await record(deps, data, 'sent');
    logger.info({ appId, msgKey, kind, template, msgid }, 'notification sent');
    return msgid === undefined ? { sent: true } : { sent: true, msgid };
  };
}
