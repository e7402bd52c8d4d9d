import { randomUUID } from 'node:crypto';
import type { AccountConfig } from '@wx-kf/shared/config';
import type { Conversations } from '@wx-kf/shared/conversation';
import type { Logger } from '@wx-kf/shared/log';
import { OUTBOUND_JOB_OPTIONS, type OutboundJobData } from '@wx-kf/shared/queue';
import { annotateUser } from '@wx-kf/shared/tracing';
import { MessageFormatError, validateReply } from '@wx-kf/shared/wechat';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { z } from 'zod';
import { sha256 } from '../digest.js';
import type { IdempotencyKeys, KeyClaim } from '../idempotency.js';
import type { KfOperations } from '../kf.js';
import type { NotificationRequest, Notifications } from '../notifications.js';
import type { Queues } from '../queues.js';
import { HandoffRefusal, Refusal, UnknownAccount, WindowRefusal } from '../refusal.js';
import { notificationJobId } from './notifications.js';
import { SEND_API_BODY_LIMIT, sendSchema } from './schemas.js';

export interface SendRoutesOptions {
  accounts: ReadonlyMap<string, AccountConfig>;
  queues: Queues;
  conversations: Conversations;
  idempotency: IdempotencyKeys;
  /** Whether a user is with a human agent. */
  kf: Pick<KfOperations, 'handedOff'>;
  /** The `fallback` notifications, sent when the window is closed. */
  notifications: Notifications;
  logger: Logger;
}

type Replies = OutboundJobData['replies'];

/** Each message checked for the account's kind; the first bad one refuses the call, named by its index (400). */
function validMessages(messages: unknown[], account: AccountConfig): Replies {
  return messages.map((message, i) => {
    try {
      return validateReply(message, account.type);
    } catch (error) {
      if (error instanceof MessageFormatError) throw new Refusal(400, 'messages', `messages.${i}: ${error.message}`);
      throw error;
    }
  });
}

/**
 * The open_kfid a WeCom reply comes from: required for a `wecom-kf` account, which has no notifications to fall
 * back on; refused for the others, whose replies have no such sender (400 either way, before anything is kept).
 */
function kfIdOf(account: AccountConfig, body: { open_kfid?: string | undefined; fallback?: unknown }) {
  if (account.type !== 'wecom-kf') {
    if (body.open_kfid === undefined) return undefined;
    throw new Refusal(400, 'open_kfid', 'open_kfid is only for a WeCom customer-service (wecom-kf) account');
  }
  if (body.open_kfid === undefined)
    throw new Refusal(400, 'open_kfid', 'open_kfid is required for a WeCom customer-service account');
  if (body.fallback !== undefined)
    throw new Refusal(400, 'fallback', 'a WeCom customer-service account has no notifications to fall back on');
  return body.open_kfid;
}

/**
 * Refuses a call the user's window or quota cannot carry in full (invariant 11): refusing the whole call beats
 * sending its first messages and failing the rest.
 */
async function checkWindow(conversations: Conversations, appId: string, touser: string, count: number) {
  const window = await conversations.window(appId, touser);
  if (window.refusal) throw new WindowRefusal(window.refusal);
  if (window.left < count)
    throw new WindowRefusal(`only ${window.left} send(s) left in the user's window, ${count} asked`);
}

/**
 * `POST /api/v1/messages`: custom/send bodies for one user, queued on the outbound queue (202 `{ jobId }`). With an
 * Idempotency-Key, a retry with the same body answers the first job (`Idempotent-Replayed: true`). With a
 * `fallback` notification, a closed window sends that instead, and the answer says which went out (`via`). For a
 * WeCom corp (`wecom-kf`), `touser` is the customer's external_userid and `open_kfid` the account it wrote to.
 */
export const sendRoutes: FastifyPluginAsync<SendRoutesOptions> = async (fastify, options) => {
  const { accounts, queues, conversations, idempotency, kf, notifications, logger } = options;
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  app.post('/api/v1/messages', { bodyLimit: SEND_API_BODY_LIMIT, schema: sendSchema }, async (req, reply) => {
    const { body } = req;
    const key = req.headers['idempotency-key'];
    const account = accounts.get(body.appId);
    if (!account) throw new UnknownAccount(400);
    const { appId } = account;
    annotateUser(appId, body.touser);
    const openKfId = kfIdOf(account, body);
    const replies = validMessages(body.messages, account);
    const fallback = body.fallback && (await fallbackRequest(notifications, account, body.touser, body.fallback));
    // Every field that changes what is sent: a retry is answered as the first request only if it is the same.
    const digest = sha256(
      JSON.stringify([
        appId,
        body.touser,
        replies,
        Boolean(body.ignoreWindow),
        Boolean(body.ignoreHandoff),
        ...(fallback ? [fallback] : []),
        ...(openKfId ? [{ openKfId }] : []),
      ]),
    );
    // Which went out, said only to a caller who gave a fallback (a notification's job id starts with `notify-`).
    const via = (jobId: string) => (fallback ? { via: jobId.startsWith('notify-') ? 'notification' : 'message' } : {});
    // With a key, it is claimed before anything else; a refusal or a failed add releases it for the retry.
    let claim: KeyClaim | undefined;
    if (key) {
      const claimed = await idempotency.claim(appId, key, digest);
      if ('replayed' in claimed) {
        const jobId = claimed.replayed;
        return reply
          .code(202)
          .header('idempotent-replayed', 'true')
          .send({ jobId, ...via(jobId) });
      }
      claim = claimed.claim;
    }
    try {
      // Invariant 12: the bot sends nothing to a user with a human agent, unless the caller says so.
      if (!body.ignoreHandoff && (await kf.handedOff(appId, body.touser))) throw new HandoffRefusal();
      if (!body.ignoreWindow) {
        try {
          await checkWindow(conversations, appId, body.touser, replies.length);
        } catch (error) {
          // The window cannot carry the messages: the notification goes instead, when there is one.
          if (!(fallback && error instanceof WindowRefusal)) throw error;
          const jobId = await notifications.queue(fallback, notificationJobId(appId, key), { windowClosed: true });
          await claim?.record(jobId);
          return reply.code(202).send({ jobId, ...via(jobId) });
        }
      }
      const jobId = key ? `api-${appId}-${sha256(`${appId}\n${key}`).slice(0, 32)}` : `api-${randomUUID()}`;
      const data: OutboundJobData = {
        appId,
        touser: body.touser,
        msgKey: jobId,
        replies,
        sent: 0,
        source: 'api',
        receivedAt: Date.now(),
        ...(body.ignoreWindow ? { ignoreWindow: true } : {}),
        ...(body.ignoreHandoff ? { ignoreHandoff: true } : {}),
        ...(openKfId ? { openKfId } : {}),
      };
      await queues.outboundFor(appId, body.touser).add('send', data, { ...OUTBOUND_JOB_OPTIONS, jobId });
      await claim?.record(jobId);
      logger.info({ appId, jobId, replies: replies.length }, 'send API: queued');
      return reply.code(202).send({ jobId, ...via(jobId) });
    } finally {
      await claim?.release();
    }
  });
};

/** The send API's `fallback` as a notification request for the user, checked as the notifications endpoint checks. */
async function fallbackRequest(
  notifications: Notifications,
  account: AccountConfig,
  touser: string,
  fallback: NonNullable<z.infer<typeof sendSchema.body>['fallback']>,
): Promise<NotificationRequest> {
  const { kind = 'subscribe', ignoreGrant, ...fields } = fallback;
  const body = notifications.body(account, kind, { touser, ...fields });
  const { longTerm } = await notifications.check(account.appId, kind, body);
  return { appId: account.appId, kind, body, ignoreGrant: Boolean(ignoreGrant) || longTerm, source: 'fallback' };
}
