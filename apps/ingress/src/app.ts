import underPressure from '@fastify/under-pressure';
import {
  buildTransferReply,
  type Config,
  DecryptError,
  type InboundJobData,
  inboundJob,
  type Logger,
  MessageFormatError,
  ReplyRules,
  SignatureError,
  SUCCESS,
  sealReply,
  verifySignature,
} from '@wx-kf/shared';
import type { Queue } from 'bullmq';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, LogController } from 'fastify';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { IngressMetrics } from './metrics.js';
import {
  checkTimestamp,
  type IngressAccount,
  ingressAccount,
  PolicyError,
  type PushQuery,
  receivePush,
} from './receive.js';

export interface IngressOptions {
  config: Pick<Config, 'accounts' | 'timestampToleranceSeconds' | 'replyRulesFile'>;
  /** The inbound queue, on a producer connection (fails fast while Redis is down). */
  queue: Queue<InboundJobData>;
  redis: Redis;
  logger: Logger;
  registry?: Registry;
  /** Longest wait for Redis before answering 503 (WeChat gives up after 5 s). */
  enqueueTimeoutMs?: number;
  /** Largest push body accepted (WeChat's are a few kB). */
  bodyLimit?: number;
}

/** Redis did not take the push in time. */
class UnavailableError extends Error {
  override readonly name = 'UnavailableError';
}

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new UnavailableError(`redis did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The HTTP status and short reason for a push we refuse. */
function refusal(error: unknown): { status: number; error: string; message: string } {
  if (error instanceof SignatureError) return { status: 401, error: 'signature', message: error.message };
  if (error instanceof DecryptError) return { status: 400, error: 'decrypt', message: error.message };
  if (error instanceof MessageFormatError) return { status: 400, error: 'format', message: error.message };
  if (error instanceof PolicyError) return { status: 403, error: 'policy', message: error.message };
  if (error instanceof UnavailableError) {
    return { status: 503, error: 'unavailable', message: 'the push could not be stored; WeChat will retry' };
  }
  return { status: 500, error: 'internal', message: 'internal error' };
}

/** The ingress as a Fastify instance: tests `inject` into it, `main.ts` listens with it. */
export function buildApp(options: IngressOptions): FastifyInstance {
  const { config, queue, redis, logger } = options;
  const enqueueTimeoutMs = options.enqueueTimeoutMs ?? 2500;
  const metrics = new IngressMetrics(options.registry ?? new Registry());
  const accounts = new Map<string, IngressAccount>(config.accounts.map((a) => [a.appId, ingressAccount(a)]));
  // Only transfer rules matter here (the worker decides replies), so only accounts that have one consult rules.
  const transferRules = new Map<string, ReplyRules>();
  for (const a of config.accounts) {
    const file = a.replyRules ?? config.replyRulesFile;
    const rules = file ? ReplyRules.load(file, a.type) : undefined;
    if (rules?.transfers) transferRules.set(a.appId, rules);
  }
  const onlyAccount = config.accounts.length === 1 ? config.accounts[0]?.appId : undefined;

  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // One line per push is logged by the route itself; no per-request child logger on the hot path.
    childLoggerFactory: (parent) => parent,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimit ?? 256 * 1024,
    requestTimeout: 4000,
    return503OnClosing: true,
  });

  // Whatever the Content-Type says, the body is read as text; the format is decided from the body.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  app.register(underPressure, { maxEventLoopDelay: 1000, retryAfter: 1, exposeStatusRoute: false });

  app.setErrorHandler((error: { statusCode?: number; code?: string; message: string }, req, reply) => {
    const status = error.statusCode && error.statusCode < 500 ? error.statusCode : 500;
    req.log.warn({ route: req.routeOptions.url, status, code: error.code, reason: error.message }, 'request refused');
    return reply.code(status).send({ error: error.code ?? 'error', message: error.message });
  });
  app.setNotFoundHandler((_req, reply) => reply.code(404).send({ error: 'not_found', message: 'no such route' }));

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    try {
      await withTimeout(redis.ping(), 1000);
      return { status: 'ready' };
    } catch {
      return reply.code(503).send({ status: 'redis unavailable' });
    }
  });

  const accountFor = (appId: string | undefined, reply: FastifyReply): IngressAccount | undefined => {
    const account = accounts.get(appId ?? onlyAccount ?? '');
    if (!account) void reply.code(404).send({ error: 'unknown_account', message: 'no account with this AppID' });
    return account;
  };

  const verifyUrl = async (req: { params: unknown; query: unknown }, reply: FastifyReply) => {
    const account = accountFor(str((req.params as { appId?: string }).appId), reply);
    if (!account) return reply;
    const q = req.query as Record<string, unknown>;
    const echostr = str(q.echostr);
    try {
      checkTimestamp(str(q.timestamp), config.timestampToleranceSeconds);
      verifySignature(account.config.token, {
        signature: str(q.signature),
        timestamp: str(q.timestamp),
        nonce: str(q.nonce),
      });
    } catch (error) {
      const r = refusal(error);
      logger.warn({ appId: account.config.appId, outcome: 'rejected', reason: r.message }, 'url verification refused');
      return reply.code(r.status).send({ error: r.error, message: r.message });
    }
    if (!echostr) return reply.code(400).send({ error: 'format', message: 'echostr is required' });
    logger.info({ appId: account.config.appId }, 'url verification answered');
    return reply.type('text/plain; charset=utf-8').send(echostr);
  };

  const receive = async (req: { params: unknown; query: unknown; body: unknown }, reply: FastifyReply) => {
    const started = performance.now();
    const account = accountFor(str((req.params as { appId?: string }).appId), reply);
    if (!account) return reply;
    const appId = account.config.appId;
    const q = req.query as Record<string, unknown>;
    const query: PushQuery = {
      signature: str(q.signature),
      timestamp: str(q.timestamp),
      nonce: str(q.nonce),
      msg_signature: str(q.msg_signature),
      encrypt_type: str(q.encrypt_type),
    };
    const line: Record<string, unknown> = { appId, mode: query.encrypt_type === 'aes' ? 'encrypted' : 'plain' };
    const finish = (result: string, status: number, level: 'info' | 'warn' | 'error', extra: object = {}) => {
      const seconds = (performance.now() - started) / 1000;
      metrics.pushes.inc({ app_id: appId, mode: String(line.mode), result });
      metrics.ackSeconds.observe({ result }, seconds);
      logger[level]({ ...line, outcome: result, status, ms: Math.round(seconds * 10_000) / 10, ...extra }, 'push');
    };
    try {
      checkTimestamp(query.timestamp, config.timestampToleranceSeconds);
      const body = typeof req.body === 'string' ? req.body : '';
      const push = receivePush(account, query, body);
      const { message } = push;
      const decision = transferRules.get(appId)?.decide(message);
      const transfer = decision?.kind === 'transfer' ? decision : undefined;
      const job = inboundJob(appId, message, { mode: push.mode, format: push.format, transferred: Boolean(transfer) });
      Object.assign(line, { mode: push.mode, format: push.format, msgType: message.MsgType, msgKey: job.data.msgKey });
      try {
        await withTimeout(queue.add(job.name, job.data, job.opts), enqueueTimeoutMs);
      } catch (error) {
        metrics.enqueueFailures.inc({ app_id: appId });
        throw error instanceof UnavailableError ? error : new UnavailableError((error as Error).message);
      }

      if (!transfer) {
        finish('stored', 200, 'info');
        return reply.type('text/plain; charset=utf-8').send(SUCCESS);
      }
      let answer = buildTransferReply(message, push.format, { kfAccount: transfer.kfAccount });
      if (push.mode !== 'plain' && account.key && query.nonce) {
        answer = sealReply(answer, push.format, {
          token: account.config.token,
          key: account.key,
          appId,
          nonce: query.nonce,
        });
      }
      finish('transferred', 200, 'info');
      return reply.type(push.format === 'json' ? 'application/json' : 'application/xml').send(answer);
    } catch (error) {
      const r = refusal(error);
      if (r.status === 503) finish('unavailable', 503, 'error', { reason: (error as Error).message });
      else if (r.status === 500) finish('error', 500, 'error', { err: error });
      else finish('rejected', r.status, 'warn', { reason: r.message });
      return reply.code(r.status).send({ error: r.error, message: r.message });
    }
  };

  app.get('/wechat/:appId', verifyUrl);
  app.post('/wechat/:appId', receive);
  if (onlyAccount) {
    app.get('/wechat', verifyUrl);
    app.post('/wechat', receive);
  }
  return app;
}
