import type { ServerResponse } from 'node:http';
import multipart from '@fastify/multipart';
import { WINDOW_GRANTS, type WindowTrigger } from '@wx-kf/shared/conversation';
import type { Logger } from '@wx-kf/shared/log';
import { MessageFormatError, SENDABLE_TYPES, validateReply } from '@wx-kf/shared/wechat';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import { type Fault, FaultPlan, type FaultRule, type LatencyRule } from './faults.js';
import { parseJsonBody } from './json-body.js';
import { KfState, kfRoutes } from './kf.js';
import { type ModelOptions, ModelState, modelRoutes } from './model.js';
import { type SecCheckCall, secCheckRoutes } from './sec-check.js';
import { type RecordedMessage, type SimOptions, SimState } from './state.js';

export interface SimulatorOptions extends SimOptions {
  logger?: Logger;
  /** Called for every message custom/send accepts (the demo prints them). */
  onMessage?: (message: RecordedMessage) => void;
  /** The fake OpenAI-compatible model under `/v1/` (always served; these set its key and speed). */
  model?: ModelOptions;
}

const ok = { errcode: 0, errmsg: 'ok' };
const err = (errcode: number, errmsg: string) => ({ errcode, errmsg });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const MEDIA_TTL_MS = 3 * 24 * 3600_000;

type Query = Record<string, string | undefined>;

/**
 * A fake WeChat API on real sockets: token, stable_token, custom/send, typing, media upload/get, with
 * WeChat's errcodes, fault injection and an inspection API under `/__sim/`; and a fake language model with
 * OpenAI's chat-completions API under `/v1/` (model.ts).
 */
export class Simulator {
  readonly state: SimState;
  readonly faults = new FaultPlan();
  /** Official Account agents and sessions, and Mini Program login codes. */
  readonly kf = new KfState();
  /** The fake model's settings and calls. */
  readonly model: ModelState;
  /** Every msg_sec_check call and its verdict. */
  readonly secChecks: SecCheckCall[] = [];
  readonly app: FastifyInstance;
  /** Calls held open by a hang fault (ended when the simulator closes). */
  private readonly hanging = new Set<ServerResponse>();
  private baseUrl: string | undefined;

  private readonly onMessage: ((message: RecordedMessage) => void) | undefined;

  constructor(options: SimulatorOptions) {
    this.state = new SimState(options);
    this.onMessage = options.onMessage;
    this.model = new ModelState(options.model);
    this.app = Fastify({
      loggerInstance: options.logger as FastifyBaseLogger | undefined,
      logController: new LogController({ disableRequestLogging: true }),
      bodyLimit: 20 * 1024 * 1024,
    });
    this.app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
    this.app.removeContentTypeParser('application/json');
    this.app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => done(null, body));
    this.app.register(multipart, { limits: { fileSize: 10 * 1024 * 1024 } });
    this.app.addHook('preClose', async () => {
      for (const res of this.hanging) res.destroy();
    });
    this.routes();
  }

  /** Listens on loopback (port 0 = any free port) and returns the base URL. */
  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    await this.app.listen({ port, host });
    const address = this.app.server.address();
    this.baseUrl = `http://${host}:${typeof address === 'object' && address ? address.port : port}`;
    return this.baseUrl;
  }

  get url(): string {
    if (!this.baseUrl) throw new Error('simulator is not listening');
    return this.baseUrl;
  }

  close(): Promise<void> {
    return this.app.close();
  }

  /** Scripts or randomises failures for a path (and account). */
  fail(rule: FaultRule): void {
    this.faults.add(rule);
  }

  /** Delays the calls a rule matches (every call when it names no path). */
  slow(rule: LatencyRule): void {
    this.faults.addLatency(rule);
  }

  /** Clears recorded state, tokens and faults. */
  reset(): void {
    this.state.reset();
    this.kf.reset();
    this.model.reset();
    this.secChecks.length = 0;
    this.faults.clear();
  }

  /** Applies latency and any fault; returns true when the fault already answered the call. */
  private async intercept(req: FastifyRequest, reply: FastifyReply, appId: string | undefined): Promise<boolean> {
    const path = req.routeOptions.url ?? req.url;
    const delay = this.faults.latency(path, appId);
    if (delay > 0) await sleep(delay);
    const fault: Fault | undefined = this.faults.next(path, appId);
    if (!fault || fault === 'ok') return false;
    if ('delayMs' in fault) {
      await sleep(fault.delayMs);
      return false;
    }
    if ('drop' in fault) {
      req.raw.socket.destroy();
      reply.hijack();
      return true;
    }
    if ('hang' in fault) {
      reply.hijack();
      this.hanging.add(reply.raw);
      await new Promise((resolve) => reply.raw.once('close', resolve));
      this.hanging.delete(reply.raw);
      return true;
    }
    if ('http' in fault) {
      if (fault.retryAfterMs !== undefined) reply.header('retry-after', String(Math.ceil(fault.retryAfterMs / 1000)));
      await reply.code(fault.http).type('text/html').send(`<html><body>${fault.http}</body></html>`);
      return true;
    }
    await reply.send(err(fault.errcode, fault.errmsg ?? `simulated errcode ${fault.errcode}`));
    return true;
  }

  /** Resolves the caller's account from access_token; answers the token error itself when invalid. */
  private async authorise(req: FastifyRequest, reply: FastifyReply): Promise<string | undefined> {
    const token = (req.query as Query).access_token;
    const check = this.state.checkToken(token);
    const appId = check.ok ? check.appId : undefined;
    if (await this.intercept(req, reply, appId)) return undefined;
    if (!check.ok) {
      await reply.send(err(check.errcode, check.errmsg));
      return undefined;
    }
    return check.appId;
  }

  private routes(): void {
    const { app, state } = this;

    app.get('/cgi-bin/token', async (req, reply) => {
      const q = req.query as Query;
      if (q.appid) state.countTokenRequest(q.appid, 'classic');
      if (await this.intercept(req, reply, q.appid)) return reply;
      if (q.grant_type !== 'client_credential') return err(40002, 'invalid grant_type');
      const auth = state.authenticate(q.appid, q.secret);
      return auth.ok ? state.classicToken(auth.appId) : err(auth.errcode, auth.errmsg);
    });

    app.post('/cgi-bin/stable_token', async (req, reply) => {
      const body = parseJsonBody(req.body);
      const appId = typeof body?.appid === 'string' ? body.appid : undefined;
      if (appId) state.countTokenRequest(appId, 'stable');
      if (await this.intercept(req, reply, appId)) return reply;
      if (!body) return err(47001, 'data format error');
      if (body.grant_type !== 'client_credential') return err(40002, 'invalid grant_type');
      const auth = state.authenticate(appId, typeof body.secret === 'string' ? body.secret : undefined);
      return auth.ok ? state.stableToken(auth.appId, body.force_refresh === true) : err(auth.errcode, auth.errmsg);
    });

    app.post('/cgi-bin/message/custom/send', async (req, reply) => {
      const appId = await this.authorise(req, reply);
      if (!appId) return reply;
      const account = state.accounts.get(appId);
      const body = parseJsonBody(req.body);
      if (!account || !body) return err(47001, 'data format error');
      const { touser, ...item } = body;
      if (typeof touser !== 'string' || touser === '') return err(40003, 'invalid openid');
      if (typeof item.msgtype !== 'string' || !SENDABLE_TYPES[account.type].includes(item.msgtype)) {
        return err(40008, 'invalid message type');
      }
      try {
        validateReply(item, account.type);
      } catch (error) {
        if (!(error instanceof MessageFormatError)) throw error;
        if (item.msgtype === 'news') return err(45008, 'article size out of limit');
        return err(47001, `data format error: ${error.message}`);
      }
      const window = state.takeWindow(appId, touser);
      if (window === 45015) return err(45015, 'response out of time limit or subscription is canceled');
      if (window === 45047) return err(45047, 'out of response count limit');
      const recorded = { appId, touser, msgtype: item.msgtype, body, at: state.now() };
      state.messages.push(recorded);
      this.onMessage?.(recorded);
      app.log.info({ appId, touser, msgtype: item.msgtype, message: item }, 'simulator: custom/send delivered');
      return ok;
    });

    app.post('/cgi-bin/message/custom/typing', async (req, reply) => {
      const appId = await this.authorise(req, reply);
      if (!appId) return reply;
      const body = parseJsonBody(req.body);
      if (!body || typeof body.touser !== 'string') return err(40003, 'invalid openid');
      if (body.command !== 'Typing' && body.command !== 'CancelTyping') return err(45072, 'command invalid');
      state.typing.push({ appId, touser: body.touser, command: body.command, at: state.now() });
      return ok;
    });

    app.post('/cgi-bin/media/upload', async (req, reply) => {
      const appId = await this.authorise(req, reply);
      if (!appId) return reply;
      const type = (req.query as Query).type ?? '';
      if (!['image', 'voice', 'video', 'thumb'].includes(type)) return err(40004, 'invalid media type');
      if (!req.isMultipart()) return err(41005, 'media data missing');
      const file = await req.file();
      if (!file) return err(41005, 'media data missing');
      if (file.fieldname !== 'media') return err(41005, 'media field missing');
      const data = await file.toBuffer();
      if (data.length === 0) return err(44001, 'empty media data');
      const mediaId = `SIM_MEDIA_${state.media.size + 1}_${Math.random().toString(36).slice(2, 10)}`;
      const createdAt = state.now();
      state.media.set(mediaId, { appId, type, data, filename: file.filename, expiresAt: createdAt + MEDIA_TTL_MS });
      return { type, media_id: mediaId, created_at: Math.floor(createdAt / 1000) };
    });

    app.get('/cgi-bin/media/get', async (req, reply) => {
      const appId = await this.authorise(req, reply);
      if (!appId) return reply;
      const media = state.media.get((req.query as Query).media_id ?? '');
      if (!media || media.appId !== appId || state.now() >= media.expiresAt) return err(40007, 'invalid media_id');
      return reply
        .type('application/octet-stream')
        .header('content-disposition', `attachment; filename="${media.filename}"`)
        .send(media.data);
    });

    kfRoutes(app, state, this.kf, {
      authorise: (req, reply) => this.authorise(req, reply),
      intercept: (req, reply, appId) => this.intercept(req, reply, appId),
    });
    modelRoutes(app, this.model, this.faults, state.now);
    secCheckRoutes(app, state, this.secChecks, (req, reply) => this.authorise(req, reply));

    // Inspection and control (never part of WeChat's API).
    app.get('/__sim/state', async () => ({
      accounts: [...state.accounts.values()].map(({ appId, type }) => ({ appId, type })),
      tokenRequests: Object.fromEntries(state.tokenRequests),
      messages: state.messages.length,
      typing: state.typing.length,
      media: state.media.size,
      modelCalls: this.model.calls.length,
    }));
    app.get('/__sim/messages', async (req) => {
      const q = req.query as Query;
      return state.messagesFor(q.appId, q.touser);
    });
    app.post('/__sim/reset', async () => {
      this.reset();
      return ok;
    });
    app.post('/__sim/faults', async (req, reply) => {
      const rule = parseJsonBody(req.body) as FaultRule | undefined;
      if (!rule || typeof rule.path !== 'string') return reply.code(400).send({ error: 'a fault rule needs a path' });
      this.fail(rule);
      return ok;
    });
    app.post('/__sim/latency', async (req, reply) => {
      const rule = parseJsonBody(req.body) as LatencyRule | undefined;
      if (!rule) return reply.code(400).send({ error: 'a latency rule is a JSON object' });
      this.slow(rule);
      return ok;
    });
    app.post('/__sim/users/activity', async (req, reply) => {
      const body = parseJsonBody(req.body);
      if (typeof body?.appId !== 'string' || typeof body.openid !== 'string') {
        return reply.code(400).send({ error: 'appId and openid are required' });
      }
      const action =
        typeof body.action === 'string' && Object.hasOwn(WINDOW_GRANTS, body.action) ? body.action : 'message';
      state.userActed(body.appId, body.openid, action as WindowTrigger);
      return ok;
    });
    app.post('/__sim/accounts/:appId/invalidate-tokens', async (req) => {
      state.invalidateTokens((req.params as { appId: string }).appId);
      return ok;
    });
  }
}
