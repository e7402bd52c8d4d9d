import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import basicAuth from '@fastify/basic-auth';
import type { AccountConfig, Config } from '@wx-kf/shared/config';
import { Conversations } from '@wx-kf/shared/conversation';
import { handoffCounter } from '@wx-kf/shared/handoff';
import { clip, type Logger } from '@wx-kf/shared/log';
import { OUTBOUND_JOB_OPTIONS, type OutboundJobData, QUEUE_NAMES } from '@wx-kf/shared/queue';
import { createRedis, releaseLockScript } from '@wx-kf/shared/redis';
import { annotateUser, serverSpans } from '@wx-kf/shared/tracing';
import { MessageFormatError, validateReply } from '@wx-kf/shared/wechat';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { z } from 'zod';
import { KfOperations } from './kf.js';
import { Queues } from './queues.js';
import { WindowCounter } from './rate-limit.js';
import { kfRoutes } from './routes/kf.js';
import { openidSchema, userRoutes, windowMetrics, windowRefusal } from './users.js';

/**
 * Per minute: wrong credentials per presented user name or API key (the right ones are never refused), and
 * send-API calls per client address.
 */
export const ADMIN_LIMITS = { failedLoginsPerMinute: 10, sendsPerMinute: 600 };
/** The send API's bounds: the whole body, the messages per call, the OpenID. */
export const SEND_API_BODY_LIMIT = 64 * 1024;
export const SEND_API_MAX_MESSAGES = 20;
/** How long an Idempotency-Key keeps answering with its first job (WeChat's send window is 48 h at most). */
export const IDEMPOTENCY_TTL_MS = 24 * 3600_000;
/**
 * How long a claimed key stays pending without its job, far above a request: after a crash between the claim and
 * the marker, the retry claims again and adds the same job id, which BullMQ does not add twice.
 */
export const IDEMPOTENCY_PENDING_MS = 60_000;
/** How long a request waits for the job of a concurrent one with the same key and body before answering 409. */
export const IDEMPOTENCY_WAIT_MS = 2_000;
/** The marker of a claimed key whose job is not added yet: `pending <digest> <request id>` (job ids start with `api-`). */
const PENDING = 'pending';

/** The send API's request: the account and user, then each message checked for the account's kind. */
const sendRequest = {
  body: z.object({
    appId: z.string().max(64),
    touser: openidSchema,
    messages: z
      .array(z.unknown())
      .min(1)
      .max(SEND_API_MAX_MESSAGES, `at most ${SEND_API_MAX_MESSAGES} custom/send bodies without touser`),
    /** Send even where the user's window or quota says no (WeChat's rules changed under us). */
    ignoreWindow: z.boolean().optional(),
    /** Send even while the user is handed to a human agent (otherwise 409 handoff). */
    ignoreHandoff: z.boolean().optional(),
  }),
  headers: z.looseObject({
    'idempotency-key': z
      .string()
      .regex(/^[\x21-\x7e]{1,128}$/, 'must be 1 to 128 printable ASCII characters')
      .optional(),
  }),
};

export interface AdminOptions {
  /** Registries of the process hosting the listener (ingress and/or worker metrics), served at /metrics. */
  registries?: Registry[];
  /** Overrides of ADMIN_LIMITS (tests). */
  limits?: Partial<typeof ADMIN_LIMITS>;
}

export interface RunningAdmin {
  app: FastifyInstance;
  url: string;
  close(): Promise<void>;
}

/** Equal strings, compared in constant time over SHA-256 digests: neither the length nor a prefix leaks. */
function digestEqual(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

function queueMetrics(registry: Registry, queues: Queues, appIds: string[]): void {
  new Gauge({
    name: 'wxkf_queue_jobs',
    help: 'Jobs per queue and state',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      for (const [queue, counts] of Object.entries(await queues.stats())) {
        for (const [state, n] of Object.entries(counts)) if (typeof n === 'number') this.set({ queue, state }, n);
      }
    },
  });
  new Gauge({
    name: 'wxkf_queue_oldest_waiting_seconds',
    help: 'Age of the oldest waiting job per queue (alert when it grows: workers are not keeping up)',
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      for (const name of QUEUE_NAMES) this.set({ queue: name }, await queues.oldestWaitingAge(name));
    },
  });
  new Gauge({
    name: 'wxkf_account_paused',
    help: 'Whether an account’s sends are paused (1) and why: quota (45009, expires) or operator (until resumed)',
    labelNames: ['app_id', 'reason'],
    registers: [registry],
    async collect() {
      const pauses = await queues.pauses(appIds);
      for (const appId of appIds) {
        for (const reason of ['quota', 'operator'] as const) {
          this.set({ app_id: appId, reason }, pauses.some((p) => p.appId === appId && p.reason === reason) ? 1 : 0);
        }
      }
    },
  });
}

/**
 * The answer for a key already claimed, from its marker `<jobId|pending> <digest>`: another body is a 422; the
 * same body the job (202, replayed), or 409 while the first request still holds the key pending.
 */
function replayed(reply: FastifyReply, stored: string, digest: string) {
  const [jobId, storedDigest] = stored.split(' ');
  if (storedDigest !== digest) {
    return reply
      .code(422)
      .send({ error: 'idempotency_key', message: 'this Idempotency-Key was used with another body' });
  }
  if (jobId === PENDING) {
    return reply.code(409).header('retry-after', '1').send({
      error: 'idempotency_pending',
      message: 'a request with this Idempotency-Key is still being handled; retry to get its job',
    });
  }
  return reply.code(202).header('idempotent-replayed', 'true').send({ jobId });
}

/** A wrong login whose user name or key failed too often this minute: answered 429, not 401. */
class LoginThrottled extends Error {
  readonly statusCode = 429;
  constructor(readonly seconds: number) {
    super('too many failed logins');
  }
}

/**
 * The admin listener's own gauges (queues, pauses, open windows), read from Redis at each scrape and registered on
 * `registry`; the listener adds process metrics and the handoff counter.
 */
export function adminMetrics(registry: Registry, queues: Queues, conversations: Conversations, appIds: string[]): void {
  queueMetrics(registry, queues, appIds);
  windowMetrics(registry, conversations, appIds);
}

/** 429 with a short reason and Retry-After. */
function tooMany(reply: FastifyReply, seconds: number, what: string) {
  return reply
    .code(429)
    .header('retry-after', String(seconds))
    .send({ error: 'rate_limited', message: `${what}; try again in ${seconds} s` });
}

// bull-board routes that would put data of the dashboard user's choosing into a job: the worker sends what
// a job holds, so these stay closed. Retry, promote, clean and remove stay open.
const BOARD_DENIED = new Set(['post /api/queues/:queueName/add', 'patch /api/queues/:queueName/:jobId/update-data']);
// The dashboard loads everything from this listener: no fonts or scripts from another host (offline sites).
const BOARD_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";
const EXTERNAL_LINK = /<link\b[^>]*\bhref=["']?(?:https?:)?\/\/[^>]*>\s*/gi;

/**
 * The admin listener: bull-board and /metrics behind basic auth, and `POST /api/v1/messages` behind a bearer
 * key. Meant for loopback or a private network, never the public port.
 */
export async function buildAdminApp(
  config: Config,
  logger: Logger,
  options: AdminOptions & { queues: Queues },
): Promise<FastifyInstance> {
  const { queues } = options;
  const password = config.admin.password;
  if (!password) throw new Error('the admin listener needs ADMIN_PASSWORD');
  const accounts = new Map<string, AccountConfig>(config.accounts.map((a) => [a.appId, a]));

  const limits = { ...ADMIN_LIMITS, ...options.limits };
  const failures = new WindowCounter(limits.failedLoginsPerMinute, 60_000);
  const sends = new WindowCounter(limits.sendsPerMinute, 60_000);
  const redis = queues.connection;
  releaseLockScript.register(redis);

  const conversations = new Conversations(redis, { timeline: config.timeline });
  const own = new Registry();
  adminMetrics(own, queues, conversations, [...accounts.keys()]);
  const hosted = options.registries ?? [];
  if (!hosted.some((r) => r.getSingleMetric('process_cpu_user_seconds_total')))
    collectDefaultMetrics({ register: own });
  const registry = Registry.merge([own, ...hosted]);
  // Operator handoffs count in the hosting process's wxkf_handoffs_total when it has one (pnpm start).
  const handoffMetric = handoffCounter([own, ...hosted]);
  const kf = new KfOperations(config, redis, logger, (change, appId, reason) =>
    handoffMetric.inc({ app_id: appId, change, reason }),
  );

  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    // The client address (the send rate, logs) from X-Forwarded-For only when it comes from these proxies.
    trustProxy: config.admin.trustProxy ?? false,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.addHook('onClose', () => kf.close());
  // While tracing is on: a server span per API call (a send's trace goes on in the worker that sends it).
  const traced = serverSpans((url) => url.startsWith('/api/v1/'));
  if (traced) app.addHook('onRoute', traced);
  // A request that fails its schema: 400 naming the field first (`touser`, `messages`, `idempotency-key`).
  app.setErrorHandler((error, _req, reply) => {
    if (error instanceof LoginThrottled) return tooMany(reply, error.seconds, error.message);
    if (!hasZodFastifySchemaValidationErrors(error)) return reply.send(error);
    const issue = error.validation[0];
    const field = issue?.instancePath.split('/')[1] || 'request';
    const message = `${field}: ${issue?.message ?? 'invalid'}`;
    return reply.code(400).send({ error: field, message: clip(message, 200) });
  });

  /**
   * Claims an Idempotency-Key for this request (SET NX of a pending marker): undefined when claimed, else what
   * the key holds. A request with the same body waits up to IDEMPOTENCY_WAIT_MS for the holder's job.
   */
  const claimKey = async (marker: string, pending: string, digest: string): Promise<string | undefined> => {
    const deadline = Date.now() + IDEMPOTENCY_WAIT_MS;
    for (;;) {
      if (await redis.set(marker, pending, 'PX', IDEMPOTENCY_PENDING_MS, 'NX')) return undefined;
      const stored = await redis.get(marker);
      if (stored === null) continue; // released meanwhile (refused or failed): claim it again
      const [head, storedDigest] = stored.split(' ');
      if (head !== PENDING || storedDigest !== digest || Date.now() >= deadline) return stored;
      await sleep(20);
    }
  };

  /**
   * A wrong credential, counted against what was presented (the user name, or the key's digest), not the
   * client's address: behind a proxy every client has one address, and valid credentials are checked before
   * this, so they are never refused. Seconds to refuse it for (429), or 0 (401).
   */
  const failed = (req: FastifyRequest, what: 'basic auth' | 'send API key', presented: string): number => {
    const id = `${what}:${sha256(presented)}`;
    const wait = failures.retryAfter(id);
    if (wait > 0) return wait;
    if (failures.add(id) === failures.limit) {
      logger.warn({ ip: req.ip, what }, 'admin: too many failed logins; this user name or key is refused for a minute');
    }
    return 0;
  };

  await app.register(basicAuth, {
    validate: async (user, pass, req) => {
      // Both compared in full, in constant time, whichever is wrong (`&`, not `&&`).
      const ok = Number(digestEqual(user, config.admin.user)) & Number(digestEqual(pass, password));
      if (!ok) {
        const wait = failed(req, 'basic auth', user);
        throw wait > 0 ? new LoginThrottled(wait) : new Error('wrong user or password');
      }
    },
    authenticate: { realm: 'wx-kf admin' },
  });

  await app.register(async (secured) => {
    secured.addHook('onRequest', secured.basicAuth);
    const board = new FastifyAdapter();
    createBullBoard({
      queues: queues.all.map((q) => new BullMQAdapter(q, { prefix: queues.displayPrefix(q) })),
      serverAdapter: board,
      options: {
        uiConfig: { boardTitle: 'wx-kf queues', hideDocsLink: true },
        handlerHooks: {
          before: ({ method, route }) =>
            BOARD_DENIED.has(`${method} ${route}`)
              ? { allow: false, status: 403, message: 'the dashboard cannot add jobs or change job data' }
              : undefined,
        },
      },
    });
    board.setBasePath('/ui');
    // bull-board's page links Google Fonts; drop any link to another host (the fonts fall back to the system's).
    secured.addHook('onSend', async (_req, reply, payload) => {
      if (!String(reply.getHeader('content-type') ?? '').startsWith('text/html')) return payload;
      reply.header('content-security-policy', BOARD_CSP);
      return typeof payload === 'string' ? payload.replace(EXTERNAL_LINK, '') : payload;
    });
    await secured.register(board.registerPlugin(), { prefix: '/ui' });
    secured.get('/', async (_req, reply) => reply.redirect('/ui'));
    secured.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
  });

  /** Bearer key, then the per-client send rate: both before the body is read. */
  const sendApiGate = async (req: FastifyRequest, reply: FastifyReply) => {
    const apiKey = config.admin.apiKey;
    if (!apiKey)
      return reply.code(403).send({ error: 'disabled', message: 'set ADMIN_API_KEY to enable the send API' });
    const auth = req.headers.authorization ?? '';
    const presented = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    if (!digestEqual(presented, apiKey)) {
      const wait = failed(req, 'send API key', presented);
      if (wait > 0) return tooMany(reply, wait, 'too many failed logins');
      return reply
        .code(401)
        .send({ error: 'unauthorized', message: 'a valid Authorization: Bearer <ADMIN_API_KEY> is required' });
    }
    if (sends.add(req.ip) > sends.limit) {
      return tooMany(reply, sends.retryAfter(req.ip), `at most ${sends.limit} send API calls a minute`);
    }
  };

  app.post(
    '/api/v1/messages',
    { bodyLimit: SEND_API_BODY_LIMIT, onRequest: sendApiGate, schema: sendRequest },
    async (req, reply) => {
      const idempotencyKey = req.headers['idempotency-key'];
      const body = req.body;
      const account = accounts.get(body.appId);
      if (!account) return reply.code(400).send({ error: 'account', message: 'appId must be a configured account' });
      let replies: OutboundJobData['replies'];
      try {
        replies = body.messages.map((m, i) => {
          try {
            return validateReply(m, account.type);
          } catch (error) {
            if (error instanceof MessageFormatError) throw new MessageFormatError(`messages.${i}: ${error.message}`);
            throw error;
          }
        });
      } catch (error) {
        if (!(error instanceof MessageFormatError)) throw error;
        return reply.code(400).send({ error: 'messages', message: error.message });
      }
      const touser = body.touser;
      annotateUser(account.appId, touser);
      // Every field that changes what is sent: a retry is answered as the first request only if it is the same.
      const digest = sha256(
        JSON.stringify([account.appId, touser, replies, Boolean(body.ignoreWindow), Boolean(body.ignoreHandoff)]),
      );
      // With a key: the key is claimed (a pending marker) before anything else, so one request of any number
      // running at once goes on; the marker then records the job for IDEMPOTENCY_TTL_MS, even after retention
      // removes the job. A refusal or a failed add releases the claim, so a retry can succeed.
      const marker = idempotencyKey ? queues.keys.idempotency(account.appId, sha256(idempotencyKey)) : '';
      const pending = `${PENDING} ${digest} ${randomUUID()}`; // this request's own claim
      if (marker) {
        const stored = await claimKey(marker, pending, digest);
        if (stored !== undefined) return replayed(reply, stored, digest);
      }
      let claimed = Boolean(marker);
      try {
        // Invariant 12: the bot sends nothing to a user with a human agent, unless the caller says so.
        if (!body.ignoreHandoff && (await kf.handedOff(account.appId, touser))) {
          return reply.code(409).send({
            error: 'handoff',
            message: 'the user is with a human agent; send with "ignoreHandoff": true to send anyway',
          });
        }
        // The user's window and quota (invariant 11): a call it cannot carry is refused whole, unless told otherwise.
        const refusal = body.ignoreWindow
          ? undefined
          : await windowRefusal(conversations, account.appId, touser, replies.length);
        if (refusal) return reply.code(409).send({ error: 'window', message: refusal });
        const jobId = idempotencyKey
          ? `api-${account.appId}-${sha256(`${account.appId}\n${idempotencyKey}`).slice(0, 32)}`
          : `api-${randomUUID()}`;
        const data: OutboundJobData = {
          appId: account.appId,
          touser,
          msgKey: jobId,
          replies,
          sent: 0,
          source: 'api',
          receivedAt: Date.now(),
          ...(body.ignoreWindow ? { ignoreWindow: true } : {}),
          ...(body.ignoreHandoff ? { ignoreHandoff: true } : {}),
        };
        await queues.outboundFor(account.appId, touser).add('send', data, { ...OUTBOUND_JOB_OPTIONS, jobId });
        if (marker) {
          await redis.set(marker, `${jobId} ${digest}`, 'PX', IDEMPOTENCY_TTL_MS);
          claimed = false;
        }
        logger.info({ appId: account.appId, jobId, replies: replies.length }, 'send API: queued');
        return reply.code(202).send({ jobId });
      } finally {
        // Only our own claim: after IDEMPOTENCY_PENDING_MS another request may hold the key.
        if (claimed) await releaseLockScript(redis, { lock: marker }, { owner: pending });
      }
    },
  );
  userRoutes(app, { conversations, appIds: new Set(accounts.keys()), gate: sendApiGate });
  await app.register(kfRoutes, { ops: kf, gate: sendApiGate });
  return app;
}

/** Starts the admin listener on ADMIN_HOST:ADMIN_PORT; resolves undefined when ADMIN_PASSWORD is unset. */
export async function startAdmin(
  config: Config,
  logger: Logger,
  options: AdminOptions = {},
): Promise<RunningAdmin | undefined> {
  if (!config.admin.password) {
    logger.info('admin listener off (no ADMIN_PASSWORD)');
    return undefined;
  }
  const redis = createRedis(config.redis, 'client', logger);
  const queues = new Queues(redis);
  const app = await buildAdminApp(config, logger, { ...options, queues });
  const url = await app.listen({ host: config.admin.host, port: config.admin.port });
  logger.info({ url }, 'admin listening');
  return {
    app,
    url,
    close: async () => {
      await app.close();
      await queues.close();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
