import multipart from '@fastify/multipart';
import type { Logger } from '@wx-kf/shared/log';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { controlRoutes } from './control-routes.js';
import { FaultPlan, type FaultRule, type LatencyRule } from './faults.js';
import { CallGate } from './gate.js';
import { KfState, kfRoutes } from './kf.js';
import { mediaRoutes } from './media-routes.js';
import { messageRoutes } from './message-routes.js';
import { type ModelOptions, ModelState, modelRoutes } from './model.js';
import { type SecCheckCall, secCheckRoutes } from './sec-check.js';
import { type RecordedMessage, type SimOptions, SimState } from './state.js';
import { subscribeRoutes } from './subscribe.js';
import { SubscribeState } from './subscribe-state.js';
import { tokenRoutes } from './token-routes.js';
import { wecomControlRoutes } from './wecom-control-routes.js';
import { wecomRoutes } from './wecom-routes.js';
import { type WeComOptions, WeComState } from './wecom-state.js';

export interface SimulatorOptions extends SimOptions {
  logger?: Logger;
  /** Called for every message custom/send accepts (the demo prints them). */
  onMessage?: (message: RecordedMessage) => void;
  /** The fake OpenAI-compatible model under `/v1/` (always served; these set its key and speed). */
  model?: ModelOptions;
  /** WeCom corps with 微信客服 (the pull channel: gettoken, kf/sync_msg, kf/send_msg… on the same origin). */
  wecom?: WeComOptions;
}

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
  /** Subscribe messages: users' grants from the pop-up events pushed, and the notifications sent. */
  readonly subscriptions = new SubscribeState();
  /** WeCom 微信客服: corps, message logs, sessions, what the API sent, and the sync counters. */
  readonly wecom: WeComState;
  readonly app: FastifyInstance;
  private baseUrl: string | undefined;

  constructor(options: SimulatorOptions) {
    this.state = new SimState(options);
    this.model = new ModelState(options.model);
    this.wecom = new WeComState(options.wecom, this.state);
    // Typed as Fastify's logger, so the instance is a plain FastifyInstance.
    const loggerInstance: FastifyBaseLogger | undefined = options.logger;
    this.app = Fastify({
      loggerInstance,
      logController: new LogController({ disableRequestLogging: true }),
      bodyLimit: 20 * 1024 * 1024,
    });
    this.app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
    this.app.removeContentTypeParser('application/json');
    this.app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => done(null, body));
    this.app.register(multipart, { limits: { fileSize: 10 * 1024 * 1024 } });
    const gate = new CallGate(this.state, this.faults);
    this.app.addHook('preClose', async () => gate.releaseHanging());
    tokenRoutes(this.app, this.state, gate);
    messageRoutes(this.app, this.state, gate, options.onMessage);
    mediaRoutes(this.app, this.state, gate, this.wecom);
    kfRoutes(this.app, this.state, this.kf, gate);
    modelRoutes(this.app, this.model, this.faults, this.state.now);
    secCheckRoutes(this.app, this.state, this.secChecks, (req, reply) => gate.authorise(req, reply));
    subscribeRoutes(this.app, this.state, this.subscriptions, (req, reply) => gate.authorise(req, reply));
    wecomRoutes(this.app, this.wecom, gate);
    controlRoutes(this.app, this);
    wecomControlRoutes(this.app, this.wecom);
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
    this.subscriptions.reset();
    this.wecom.reset();
    this.faults.clear();
  }
}
