import { isUtf8 } from 'node:buffer';
import type { Config } from '@wx-kf/shared/config';
import { type Handoffs, parseHandoff } from '@wx-kf/shared/handoff';
import type { Logger } from '@wx-kf/shared/log';
import { inboundJob } from '@wx-kf/shared/queue';
import type { ReplyRules } from '@wx-kf/shared/rules';
import { annotateUser, inSpan, serverSpans } from '@wx-kf/shared/tracing';
import { buildTransferReply, MessageFormatError, SUCCESS, sealReply, verifySignature } from '@wx-kf/shared/wechat';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { IngressMetrics } from '../metrics.js';
import { type PushStore, UnavailableError, withTimeout } from '../push-store.js';
import { checkTimestamp, type IngressAccount, type PushQuery, type ReceivedPush, receivePush } from '../receive.js';
import { refusal } from '../refusal.js';
import type { SignatureBinder, SignatureUse } from '../signature-binding.js';
import { type PushLine, pushOutcome, refusePush } from './push-outcome.js';
import { answerWeComCheck, receiveWeComCallback } from './wecom.js';

export interface WeChatRoutesOptions {
  config: { ingress: Pick<Config['ingress'], 'timestampToleranceSeconds'> };
  accounts: Map<string, IngressAccount>;
  /** Accounts whose rules can transfer a message: only they consult rules here (the worker decides replies). */
  transferRules: Map<string, ReplyRules>;
  store: PushStore;
  /** Binds a request's `signature` to what it came with: the GET check consumes its signature too. */
  bind: SignatureBinder;
  /** Our clock, in ms: a push's timestamp must be within the tolerance of it. */
  now: () => number;
  metrics: IngressMetrics;
  logger: Logger;
  /** Accounts that keep a handoff state, and the state: their users' messages are transferred while open. */
  handoff?: { accounts: Set<string>; state: Handoffs } | undefined;
}

// Bounded, so nothing unbounded is hashed, logged or echoed; other parameters (openid) pass unread.
const field = (max: number) => z.string().max(max).optional();
const querystring = z.looseObject({
  signature: field(64),
  msg_signature: field(64),
  timestamp: field(20),
  nonce: field(64),
  encrypt_type: field(16),
  // WeCom's is encrypted (base64 of the padded challenge); WeChat's is a short number (WECHAT_ECHOSTR_MAX).
  echostr: field(512),
});
/** WeChat's echostr is echoed as it came: bounded as before WeCom's longer one shared the schema. */
const WECHAT_ECHOSTR_MAX = 128;
const params = z.object({ appId: z.string().max(64).optional() });
/**
 * Whether a captured `signature` could carry a body here: only if the account takes plaintext pushes. An
 * account that takes only encrypted ones (security `safe`, the default with an AES key) need not bind any.
 */
const acceptsPlaintext = (account: IngressAccount) => account.config.security !== 'safe';
/** A WeCom customer-service corp: its callback comes to the same URL (its CorpID as the AppID). */
const isWeCom = (account: IngressAccount) => account.config.type === 'wecom-kf';
/** Longest wait for Redis in a URL check (the push path has the store's own timeout). */
const REDIS_WAIT_MS = 2500;
/** A handoff write that Redis did not do: 503, so WeChat delivers the push again. */
const unavailable = (error: Error): never => {
  throw new UnavailableError(error.message);
};
const schema = { querystring, params };

/** The account a request names (or the only one); undefined once the 404 is sent. */
function accountLookup(accounts: Map<string, IngressAccount>, metrics: IngressMetrics) {
  const onlyAccount = accounts.size === 1 ? [...accounts.keys()][0] : undefined;
  return (appId: string | undefined, reply: FastifyReply): IngressAccount | undefined => {
    const account = accounts.get(appId ?? onlyAccount ?? '');
    if (!account) {
      metrics.refused.inc({ status: '404' });
      void reply.code(404).send({ error: 'unknown_account', message: 'no account with this AppID' });
    }
    return account;
  };
}

/** WeChat's URL check: a signed GET whose `echostr` is echoed back; its signature is consumed (see bind). */
async function answerUrlCheck(
  { config, bind, now, logger }: WeChatRoutesOptions,
  account: IngressAccount,
  query: z.infer<typeof querystring>,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const { echostr, timestamp, signature } = query;
  const appId = account.config.appId;
  try {
    checkTimestamp(timestamp, config.ingress.timestampToleranceSeconds, now());
    verifySignature(account.config.token, query);
    if (!echostr) return reply.code(400).send({ error: 'format', message: 'echostr is required' });
    if (echostr.length > WECHAT_ECHOSTR_MAX) throw new MessageFormatError('echostr is too long');
    // Consumed here, so this query cannot be replayed as a plaintext push (its signature covers no body).
    if (acceptsPlaintext(account)) {
      const use: SignatureUse = {
        appId,
        signature: String(signature).toLowerCase(),
        timestamp,
        kind: 'get',
        body: echostr,
      };
      await withTimeout(bind(use), REDIS_WAIT_MS);
    }
  } catch (error) {
    const r = refusal(error);
    logger.warn({ appId, outcome: 'rejected', reason: r.message }, 'url verification refused');
    return reply.code(r.status).send({ error: r.error, message: r.message });
  }
  logger.info({ appId }, 'url verification answered');
  return reply.type('text/plain; charset=utf-8').send(echostr);
}

/**
 * An encrypted push's signature to bind with its store, where a captured one could carry a body (see
 * acceptsPlaintext). A plaintext push's was bound before its body was parsed (bindPlaintext).
 */
function signatureOf(
  account: IngressAccount,
  push: ReceivedPush,
  timestamp: string | undefined,
  body: Buffer,
): SignatureUse | undefined {
  if (!push.signature || push.mode === 'plain' || !acceptsPlaintext(account)) return undefined;
  return { appId: account.config.appId, signature: push.signature, timestamp, kind: 'aes', body };
}

/** transfer_customer_service as the answer to a push, encrypted when the push was (and a nonce came with it). */
function transferAnswer(
  account: IngressAccount,
  push: ReceivedPush,
  nonce: string | undefined,
  kfAccount: string | undefined,
): string {
  const answer = buildTransferReply(push.message, push.format, { kfAccount });
  if (push.mode === 'plain' || !account.key || !nonce) return answer;
  return sealReply(answer, push.format, {
    token: account.config.token,
    key: account.key,
    appId: account.config.appId,
    nonce,
  });
}

/**
 * A plaintext body is believed, and even parsed, only once its signature is bound to it: a captured signature
 * buys at most one parse of one body. (An encrypted push's binding goes out with its store.)
 */
async function bindPlaintext(store: PushStore, account: IngressAccount, query: PushQuery, body: Buffer) {
  if (query.encrypt_type !== undefined || !acceptsPlaintext(account)) return;
  verifySignature(account.config.token, query);
  const signature = String(query.signature).toLowerCase();
  await store.bindPlaintext({
    appId: account.config.appId,
    signature,
    timestamp: query.timestamp,
    kind: 'plain',
    body,
  });
}

/**
 * The push URL: `GET /wechat/:appId` answers WeChat's URL check, `POST /wechat/:appId` receives a push
 * (authenticate, open, store, answer `success` or a transfer). With exactly one account, `/wechat` works too.
 * For a `wecom-kf` account (its CorpID as the AppID) both are WeCom's callback instead (routes/wecom.ts).
 */
export const wechatRoutes: FastifyPluginAsync<WeChatRoutesOptions> = async (fastify, options) => {
  const { config, accounts, transferRules, store, now, metrics, handoff } = options;
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const traced = serverSpans(); // while tracing is on: a server span per request (its children: verify, store)
  if (traced) app.addHook('onRoute', traced);

  const accountFor = accountLookup(accounts, metrics);

  const paths = accounts.size === 1 ? ['/wechat/:appId', '/wechat'] : ['/wechat/:appId'];
  for (const url of paths) {
    app.get(url, { schema }, async (req, reply) => {
      const account = accountFor(req.params.appId, reply);
      const check = account && isWeCom(account) ? answerWeComCheck : answerUrlCheck;
      return account ? check(options, account, req.query, reply) : reply;
    });

    app.post(url, { schema }, async (req, reply) => {
      const started = performance.now();
      const account = accountFor(req.params.appId, reply);
      if (!account) return reply;
      // WeCom's callback: no plaintext, transfer or handoff (routes/wecom.ts).
      if (isWeCom(account))
        return receiveWeComCallback(options, account, { query: req.query, body: req.body, started }, reply);
      const appId = account.config.appId;
      const query = req.query;
      const line: PushLine = { appId, mode: query.encrypt_type === 'aes' ? 'encrypted' : 'plain' };
      const finish = pushOutcome(options, line, started);
      try {
        checkTimestamp(query.timestamp, config.ingress.timestampToleranceSeconds, now());
        const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        if (!isUtf8(raw)) throw new MessageFormatError('body is not valid UTF-8');
        await bindPlaintext(store, account, query, raw);
        const push = inSpan('verify', {}, () => receivePush(account, query, raw.toString('utf8')));
        const { message } = push;
        annotateUser(appId, message.FromUserName);
        const decision = transferRules.get(appId)?.decide(message);
        const transfer = decision?.kind === 'transfer' ? decision : undefined;
        const job = inboundJob(appId, message, {
          mode: push.mode,
          format: push.format,
          transferred: Boolean(transfer),
        });
        Object.assign(line, {
          mode: push.mode,
          format: push.format,
          msgType: message.MsgType,
          msgKey: job.data.msgKey,
        });
        const signature = signatureOf(account, push, query.timestamp, raw);
        // Handoff: the store's script reads the user's state (never for events) and renews it (not for a re-delivery).
        const readsHandoff = Boolean(handoff?.accounts.has(appId)) && message.MsgType !== 'event';
        const stored = await store(job, { signature, handoff: readsHandoff });
        const duplicate = stored.seen;
        const handedOff = parseHandoff(stored.handoff);
        // A re-delivery is answered as the first delivery was, but opens, extends and closes nothing.
        if (transfer && readsHandoff && !duplicate && !handedOff?.open) {
          const user = String(message.FromUserName);
          const change = { reason: 'rule', agent: transfer.kfAccount, force: true } as const;
          await handoff?.state.open(appId, user, change).catch(unavailable);
        }

        if (!transfer && !handedOff?.open) {
          finish(duplicate ? 'duplicate' : 'stored', 200, 'info');
          return reply.type('text/plain; charset=utf-8').send(SUCCESS);
        }
        if (handedOff?.open) line.handoff = handedOff.agent ?? true;
        const answer = transferAnswer(
          account,
          push,
          query.nonce,
          handedOff?.open ? handedOff.agent : transfer?.kfAccount,
        );
        finish(duplicate ? 'duplicate' : 'transferred', 200, 'info');
        return reply.type(push.format === 'json' ? 'application/json' : 'application/xml').send(answer);
      } catch (error) {
        return refusePush(error, reply, finish, () => metrics.enqueueFailures.inc({ app_id: appId }));
      }
    });
  }
};
