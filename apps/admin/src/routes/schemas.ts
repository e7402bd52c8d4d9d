import { notificationRequest } from '@wx-kf/shared/notify';
import { OPENID_PATTERN } from '@wx-kf/shared/wechat';
import { z } from 'zod';

/** The send API's bounds: the whole body and the messages per call. */
export const SEND_API_BODY_LIMIT = 64 * 1024;
export const SEND_API_MAX_MESSAGES = 20;

/** An account's AppID in a path or a body (checked against the configuration by the route). */
export const appId = z.string().max(64);

/** An OpenID in a request: the send API's `touser`, the users and kf routes' `:openid`. */
export const openid = z.string().regex(OPENID_PATTERN, 'must be an OpenID: 1 to 64 characters of A-Z a-z 0-9 _ -');

/** A WeCom customer-service account's open_kfid (the send API's `open_kfid`): the OpenID alphabet. */
export const openKfId = z.string().regex(OPENID_PATTERN, 'must be an open_kfid: 1 to 64 characters of A-Z a-z 0-9 _ -');

/** An Official Account agent (`prefix@account`), checked further by the operations. */
export const agent = z.string().min(1).max(64);
const nickname = z.string().min(1).max(64);

/** `POST /api/v1/messages`: the account and user, then each message checked for the account's kind. */
export const sendSchema = {
  body: z.object({
    appId,
    touser: openid,
    /** WeCom (wecom-kf accounts only, and required there): the customer-service account the replies come from. */
    open_kfid: openKfId.optional(),
    messages: z
      .array(z.unknown())
      .min(1)
      .max(SEND_API_MAX_MESSAGES, `at most ${SEND_API_MAX_MESSAGES} custom/send bodies without touser`),
    /** Send even where the user's window or quota says no (WeChat's rules changed under us). */
    ignoreWindow: z.boolean().optional(),
    /** Send even while the user is handed to a human agent (otherwise 409 handoff). */
    ignoreHandoff: z.boolean().optional(),
    /** A notification (without appId and touser) sent instead when the user's window is closed. */
    fallback: notificationRequest.optional(),
  }),
  headers: z.looseObject({
    'idempotency-key': z
      .string()
      .regex(/^[\x21-\x7e]{1,128}$/, 'must be 1 to 128 printable ASCII characters')
      .optional(),
  }),
};

/** One user of one account: `GET /api/v1/users/…`, `/api/v1/sessions/:appId/:openid`. */
export const userSchema = { params: z.object({ appId, openid }) };

/** The agents and sessions of an account, or one agent. */
export const accountSchema = { params: z.object({ appId }) };
export const agentSchema = { params: z.object({ appId, agent }) };

export const addAgentSchema = { ...accountSchema, body: z.object({ agent, nickname }) };
export const updateAgentSchema = { ...agentSchema, body: z.object({ nickname }) };
export const inviteAgentSchema = { ...agentSchema, body: z.object({ wechatId: z.string().min(1).max(64) }) };
export const agentSessionsSchema = { ...accountSchema, querystring: z.object({ agent }) };
/** A session: `agent` (a WeCom corp: the servicer's userid), and for a WeCom corp which kf account (`open_kfid`). */
const sessionFields = z.object({ agent: agent.optional(), open_kfid: openKfId.optional() });
export const showSessionSchema = { ...userSchema, querystring: sessionFields.pick({ open_kfid: true }) };
export const openSessionSchema = { ...userSchema, body: sessionFields.optional() };
export const closeSessionSchema = { ...userSchema, querystring: sessionFields };
export const code2sessionSchema = {
  body: z.object({ appId, code: z.string().min(1).max(128), includeSessionKey: z.boolean().optional() }),
};
