import { randomUUID } from 'node:crypto';
import type { AccountConfig } from '@wx-kf/shared/config';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { sha256 } from '../digest.js';
import type { IdempotencyKeys, KeyClaim } from '../idempotency.js';
import type { NotificationRequest, Notifications } from '../notifications.js';
import { UnknownAccount } from '../refusal.js';
import { NOTIFICATION_BODY_LIMIT, notificationSchema } from './notification-schemas.js';

export interface NotificationRoutesOptions {
  accounts: ReadonlyMap<string, AccountConfig>;
  notifications: Notifications;
  idempotency: IdempotencyKeys;
}

/** A notification job's id: `notify-<uuid>`, or `notify-<appId>-<hash of the key>` with an Idempotency-Key. */
export function notificationJobId(appId: string, key: string | undefined): string {
  return key ? `notify-${appId}-${sha256(`${appId}\n${key}`).slice(0, 32)}` : `notify-${randomUUID()}`;
}

/**
 * `POST /api/v1/notifications`: a subscribe message (Mini Programs, Mini Games) or, for an Official Account, a
 * template message or a subscribe notification (bizsend), queued for a worker (202 `{ jobId }`). The send API's
 * gate, Idempotency-Key and refusals: 400 for a field, 422 `data` for a value WeChat would refuse (named with
 * its limit), 409 `no_grant` when the user has no grant of the template (unless `ignoreGrant`).
 */
export const notificationRoutes: FastifyPluginAsync<NotificationRoutesOptions> = async (fastify, options) => {
  const { accounts, notifications, idempotency } = options;
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  app.post(
    '/api/v1/notifications',
    { bodyLimit: NOTIFICATION_BODY_LIMIT, schema: notificationSchema },
    async (req, reply) => {
      const { appId: requested, kind = 'subscribe', ignoreGrant, ...fields } = req.body;
      const key = req.headers['idempotency-key'];
      const account = accounts.get(requested);
      if (!account) throw new UnknownAccount(400);
      const { appId } = account;
      const body = notifications.body(account, kind, fields);
      const { longTerm } = await notifications.check(appId, kind, body);
      // Every field that changes what is sent: a retry is answered as the first request only if it is the same.
      const digest = sha256(JSON.stringify(['notification', appId, kind, body, Boolean(ignoreGrant)]));
      let claim: KeyClaim | undefined;
      if (key) {
        const claimed = await idempotency.claim(appId, key, digest);
        if ('replayed' in claimed)
          return reply.code(202).header('idempotent-replayed', 'true').send({ jobId: claimed.replayed });
        claim = claimed.claim;
      }
      try {
        // A long-term template allows many sends per accept: there is no count to keep for it.
        const request: NotificationRequest = {
          appId,
          kind,
          body,
          ignoreGrant: Boolean(ignoreGrant) || longTerm,
          source: 'api',
        };
        const jobId = await notifications.queue(request, notificationJobId(appId, key));
        await claim?.record(jobId);
        return reply.code(202).send({ jobId });
      } finally {
        await claim?.release();
      }
    },
  );
};
