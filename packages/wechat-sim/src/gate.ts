import type { ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { err } from './answers.js';
import type { FaultPlan } from './faults.js';
import { stringParam } from './json-body.js';
import type { KfHooks } from './kf.js';
import type { SimState } from './state.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What a WeChat API call passes first: the latency and fault rules for its path (and account), its access_token. */
export class CallGate implements KfHooks {
  /** Calls held open by a hang fault (ended when the simulator closes). */
  private readonly hanging = new Set<ServerResponse>();

  constructor(
    private readonly state: SimState,
    private readonly faults: FaultPlan,
  ) {}

  /** Applies latency and any fault; returns true when the fault already answered the call. */
  async intercept(req: FastifyRequest, reply: FastifyReply, appId: string | undefined): Promise<boolean> {
    const path = req.routeOptions.url ?? req.url;
    const delay = this.faults.latency(path, appId);
    if (delay > 0) await sleep(delay);
    const fault = this.faults.next(path, appId);
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
  async authorise(req: FastifyRequest, reply: FastifyReply): Promise<string | undefined> {
    const check = this.state.checkToken(stringParam(req.query, 'access_token'));
    const appId = check.ok ? check.appId : undefined;
    if (await this.intercept(req, reply, appId)) return undefined;
    if (!check.ok) {
      await reply.send(err(check.errcode, check.errmsg));
      return undefined;
    }
    return check.appId;
  }

  /** Ends the calls a hang fault holds open (the simulator is closing). */
  releaseHanging(): void {
    for (const res of this.hanging) res.destroy();
  }
}
