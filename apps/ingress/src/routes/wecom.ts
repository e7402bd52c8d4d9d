import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import type { Config } from '@wx-kf/shared/config';
import type { Logger } from '@wx-kf/shared/log';
import { inboundJob, PULL_NOTICE_JOB_OPTIONS } from '@wx-kf/shared/queue';
import { inSpan } from '@wx-kf/shared/tracing';
import {
  decryptMessage,
  detectFormat,
  type FieldMap,
  type InboundMessage,
  MessageFormatError,
  parseFields,
  SUCCESS,
  verifyMsgSignature,
} from '@wx-kf/shared/wechat';
import { noticeMessage, type PullNotice, readPullNotice } from '@wx-kf/shared/wecom';
import type { FastifyReply } from 'fastify';
import type { IngressMetrics } from '../metrics.js';
import type { PushStore } from '../push-store.js';
import { checkTimestamp, envelopeEncrypt, type IngressAccount, PolicyError } from '../receive.js';
import { bounded, refusal } from '../refusal.js';
import { type PushLine, pushOutcome, refusePush } from './push-outcome.js';

/**
 * WeCom customer service (微信客服) calls back on the same URL as WeChat pushes, for a `wecom-kf` account (its
 * CorpID as the AppID). Its callback is only a notice that messages wait for a pull: the ingress stores it as one
 * inbound job (the worker pulls) and answers at once. It never calls WeCom itself.
 */
export interface WeComCallbackOptions {
  config: { ingress: Pick<Config['ingress'], 'timestampToleranceSeconds'> };
  store: PushStore;
  /** Our clock, in ms: a callback's timestamp must be within the tolerance of it. */
  now: () => number;
  metrics: IngressMetrics;
  logger: Logger;
}

/** What WeCom's callback query carries (always encrypted: msg_signature, never `signature` or `encrypt_type`). */
export interface WeComQuery {
  msg_signature?: string | undefined;
  timestamp?: string | undefined;
  nonce?: string | undefined;
  /** The URL check's challenge, encrypted (base64) like a callback's Encrypt. */
  echostr?: string | undefined;
}

const TEXT = 'text/plain; charset=utf-8';

/** The account's AES key: a wecom-kf account always has one (the config refuses one without). */
function keyOf(account: IngressAccount): Buffer {
  if (!account.key) throw new PolicyError('a WeCom callback, but this account has no EncodingAESKey configured');
  return account.key;
}

/**
 * WeCom's URL check: `echostr` is encrypted and covered by msg_signature; the answer is its plaintext, which
 * only a holder of the token and key can give. Nothing to bind: the account takes encrypted callbacks only.
 */
export function answerWeComCheck(
  { config, now, logger }: WeComCallbackOptions,
  account: IngressAccount,
  query: WeComQuery,
  reply: FastifyReply,
): FastifyReply {
  const corpId = account.config.appId;
  let plaintext: string;
  try {
    checkTimestamp(query.timestamp, config.ingress.timestampToleranceSeconds, now());
    if (!query.echostr) throw new MessageFormatError('echostr is required');
    const echostr = verifyMsgSignature(account.config.token, query, query.echostr);
    plaintext = decryptMessage(keyOf(account), echostr, corpId);
  } catch (error) {
    const r = refusal(error);
    logger.warn({ appId: corpId, mode: 'wecom', outcome: 'rejected', reason: r.message }, 'url verification refused');
    return reply.code(r.status).send({ error: r.error, message: r.message });
  }
  logger.info({ appId: corpId, mode: 'wecom' }, 'url verification answered');
  return reply.type(TEXT).send(plaintext);
}

/**
 * Authenticates and opens a callback: the envelope's Encrypt is found without parsing, msg_signature is checked
 * over it first, then it is decrypted (receiver id = the CorpID) and only the decrypted copy is parsed. Throws
 * SignatureError, DecryptError, MessageFormatError or PolicyError.
 */
function openCallback(account: IngressAccount, query: WeComQuery, body: string): FieldMap {
  const key = keyOf(account);
  if (detectFormat(body) !== 'xml') throw new MessageFormatError('a WeCom callback is XML');
  const encrypt = verifyMsgSignature(account.config.token, query, envelopeEncrypt(body, 'xml'));
  const plaintext = decryptMessage(key, encrypt, account.config.appId);
  // Decrypted with our key and the CorpID checked: WeCom wrote it, no need to check the XML again.
  return parseFields(plaintext, detectFormat(plaintext), { validate: false });
}

const UNIX_SECONDS = /^\d{1,12}$/;

/**
 * The callback's notice as the job's message. MsgID is the Token's digest, so the job id (and BullMQ's
 * de-duplication) depends on it: the same callback delivered again is the same job. Without a Token the digest of
 * the fields is the key. CreateTime is the callback's own, else the (verified) query timestamp.
 */
function callbackNotice(corpId: string, notice: PullNotice, fields: FieldMap, timestamp: string): InboundMessage {
  const created = fields.CreateTime;
  // The job id derives from the Token (MsgID), by a digest: the Token itself is shown nowhere but in the job data.
  const digest = (t: string) => createHash('sha256').update(t).digest('hex').slice(0, 32);
  const token: Record<string, string> =
    notice.token === undefined ? {} : { Token: notice.token, MsgID: digest(notice.token) };
  const createTime = typeof created === 'string' && UNIX_SECONDS.test(created) ? created : timestamp;
  return noticeMessage(corpId, notice.openKfId, createTime, token);
}

/** The event a decrypted callback names, for the log line of one that is not a notice (bounded; never content). */
const eventOf = (fields: FieldMap) => (typeof fields.Event === 'string' ? bounded(fields.Event) : undefined);

/**
 * A WeCom callback: a pull notice is stored as one inbound job (no conversation state: an open_kfid is not a
 * user) and answered `success`; any other event is answered `success` and stored nowhere. Refusals are answered,
 * counted and logged as WeChat pushes' are. One round trip to Redis, and no call to WeCom.
 */
export async function receiveWeComCallback(
  options: WeComCallbackOptions,
  account: IngressAccount,
  request: { query: WeComQuery; body: unknown; started: number },
  reply: FastifyReply,
): Promise<FastifyReply> {
  const { config, store, now, metrics } = options;
  const { query } = request;
  const corpId = account.config.appId;
  const line: PushLine = { appId: corpId, mode: 'wecom' };
  const finish = pushOutcome(options, line, request.started);
  try {
    checkTimestamp(query.timestamp, config.ingress.timestampToleranceSeconds, now());
    const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    if (!isUtf8(raw)) throw new MessageFormatError('body is not valid UTF-8');
    const fields = inSpan('verify', {}, () => openCallback(account, query, raw.toString('utf8')));
    line.format = 'xml';
    line.msgType = typeof fields.MsgType === 'string' ? bounded(fields.MsgType) : undefined;
    const notice = readPullNotice(fields);
    if (!notice) {
      finish('ignored', 200, 'info', { event: eventOf(fields) });
      return reply.type(TEXT).send(SUCCESS);
    }
    const message = callbackNotice(corpId, notice, fields, String(query.timestamp));
    const job = inboundJob(corpId, message, { mode: 'safe', format: 'xml', options: PULL_NOTICE_JOB_OPTIONS });
    line.msgKey = job.data.msgKey;
    const stored = await store(job, { conversation: false });
    finish(stored.seen ? 'duplicate' : 'stored', 200, 'info');
    return reply.type(TEXT).send(SUCCESS);
  } catch (error) {
    return refusePush(error, reply, finish, () => metrics.enqueueFailures.inc({ app_id: corpId }));
  }
}
