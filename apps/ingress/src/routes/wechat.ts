import { isUtf8 } from 'node:buffer';
import type { Config } from '@wx-kf/shared/config';
import type { Handoffs } from '@wx-kf/shared/handoff';
import type { Logger } from '@wx-kf/shared/log';
import { inboundJob } from '@wx-kf/shared/queue';
import type { ReplyRules } from '@wx-kf/shared/rules';
import { buildTransferReply, MessageFormatError, SUCCESS, sealReply, verifySignature } from '@wx-kf/shared/wechat';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { IngressMetrics } from '../metrics.js';
import { type PushStore, UnavailableError } from '../push-store.js';
import { checkTimestamp, type IngressAccount, receivePush } from '../receive.js';
import { bounded, refusal } from '../refusal.js';

export interface WeChatRoutesOptions {
  config: Pick<Config, 'timestampToleranceSeconds'>;
  accounts: Map<string, IngressAccount>;
  /** Accounts whose rules can transfer a message: only they consult rules here (the worker decides replies). */
  transferRules: Map<string, ReplyRules>;
  store: PushStore;
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
  echostr: field(128),
});
const params = z.object({ appId: z.string().max(64).optional() });
/** A handoff read or write that Redis did not do: 503, so WeChat delivers the push again. */
const unavailable = (error: Error): never => {
  throw new UnavailableError(error.message);
};
const schema = { querystring, params };

/**
 * The push URL: `GET /wechat/:appId` answers WeChat's URL check, `POST /wechat/:appId` receives a push
 * (authenticate, open, store, answer `success` or a transfer). With exactly one account, `/wechat` works too.
 */
export const wechatRoutes: FastifyPluginAsync<WeChatRoutesOptions> = async (fastify, options) => {
  const { config, accounts, transferRules, store, metrics, logger, handoff } = options;
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const onlyAccount = accounts.size === 1 ? [...accounts.keys()][0] : undefined;

  const accountFor = (appId: string | undefined, reply: FastifyReply): IngressAccount | undefined => {
    const account = accounts.get(appId ?? onlyAccount ?? '');
    if (!account) {
      metrics.refused.inc({ status: '404' });
      void reply.code(404).send({ error: 'unknown_account', message: 'no account with this AppID' });
    }
    return account;
  };

  const paths = onlyAccount ? ['/wechat/:appId', '/wechat'] : ['/wechat/:appId'];
  for (const url of paths) {
    app.get(url, { schema }, async (req, reply) => {
      const account = accountFor(req.params.appId, reply);
      if (!account) return reply;
      const { echostr, timestamp } = req.query;
      try {
        checkTimestamp(timestamp, config.timestampToleranceSeconds);
        verifySignature(account.config.token, req.query);
      } catch (error) {
        const r = refusal(error);
        logger.warn(
          { appId: account.config.appId, outcome: 'rejected', reason: r.message },
          'url verification refused',
        );
        return reply.code(r.status).send({ error: r.error, message: r.message });
      }
      if (!echostr) return reply.code(400).send({ error: 'format', message: 'echostr is required' });
      logger.info({ appId: account.config.appId }, 'url verification answered');
      return reply.type('text/plain; charset=utf-8').send(echostr);
    });

    app.post(url, { schema }, async (req, reply) => {
      const started = performance.now();
      const account = accountFor(req.params.appId, reply);
      if (!account) return reply;
      const appId = account.config.appId;
      const query = req.query;
      // The mode is known once the push is opened; until then, what the query string claims.
      const line: Record<string, unknown> = { appId, mode: query.encrypt_type === 'aes' ? 'encrypted' : 'plain' };
      const finish = (result: string, status: number, level: 'info' | 'warn' | 'error', extra: object = {}) => {
        const seconds = (performance.now() - started) / 1000;
        metrics.pushes.inc({ app_id: appId, mode: String(line.mode), result });
        metrics.ackSeconds.observe({ result }, seconds);
        logger[level]({ ...line, outcome: result, status, ms: Math.round(seconds * 10_000) / 10, ...extra }, 'push');
      };
      try {
        checkTimestamp(query.timestamp, config.timestampToleranceSeconds);
        const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        if (!isUtf8(raw)) throw new MessageFormatError('body is not valid UTF-8');
        const push = receivePush(account, query, raw.toString('utf8'));
        const { message } = push;
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
        const plain = push.plainSignature
          ? { appId, signature: push.plainSignature, timestamp: query.timestamp, body: raw }
          : undefined;
        // Handoff: the user's state, issued in this tick so it shares the store's pipelined write (never for events).
        const handoffRead =
          handoff?.accounts.has(appId) && message.MsgType !== 'event'
            ? handoff.state.touch(appId, String(message.FromUserName))
            : undefined;
        // Awaited together: a failed store must not leave the read's rejection unhandled.
        const [{ duplicate }, handedOff] = await Promise.all([store(job, plain), handoffRead?.catch(unavailable)]);
        if (transfer && handoffRead && !handedOff?.open) {
          const user = String(message.FromUserName);
          const change = { reason: 'rule', agent: transfer.kfAccount, force: true } as const;
          await handoff?.state.open(appId, user, change).catch(unavailable);
        }

        if (!transfer && !handedOff?.open) {
          finish(duplicate ? 'duplicate' : 'stored', 200, 'info');
          return reply.type('text/plain; charset=utf-8').send(SUCCESS);
        }
        if (handedOff?.open) line.handoff = handedOff.agent ?? true;
        const kfAccount = handedOff?.open ? handedOff.agent : transfer?.kfAccount;
        let answer = buildTransferReply(message, push.format, { kfAccount });
        if (push.mode !== 'plain' && account.key && query.nonce) {
          const seal = { token: account.config.token, key: account.key, appId, nonce: query.nonce };
          answer = sealReply(answer, push.format, seal);
        }
        finish(duplicate ? 'duplicate' : 'transferred', 200, 'info');
        return reply.type(push.format === 'json' ? 'application/json' : 'application/xml').send(answer);
      } catch (error) {
        const r = refusal(error);
        if (r.status === 503) {
          metrics.enqueueFailures.inc({ app_id: appId });
          finish('unavailable', 503, 'error', { reason: bounded((error as Error).message) });
        } else if (r.status === 500) finish('error', 500, 'error', { err: error });
        else finish('rejected', r.status, 'warn', { reason: r.message });
        return reply.code(r.status).send({ error: r.error, message: r.message });
      }
    });
  }
};
