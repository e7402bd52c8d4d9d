import { notificationRequest } from '@wx-kf/shared/notify';
import { appId, openid, sendSchema } from './schemas.js';

/** The notifications endpoint's body limit: WeChat's bodies are a few kB. */
export const NOTIFICATION_BODY_LIMIT = 16 * 1024;

/**
 * `POST /api/v1/notifications`: WeChat's own body for the kind (`touser`, `template_id`, `data`, and the kind's
 * fields) plus `appId`, `kind` and `ignoreGrant`; the Idempotency-Key header as the send API's.
 */
export const notificationSchema = {
  body: notificationRequest.extend({ appId, touser: openid }),
  headers: sendSchema.headers,
};
