import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { err } from './answers.js';
import { jsonFields, stringField } from './json-body.js';
import { kfAgentRoutes, kfBindingRoutes } from './kf-agents.js';
import { kfSessionRoutes } from './kf-sessions.js';
import type { KfState, SimAgent } from './kf-state.js';
import { loginRoutes } from './login.js';
import type { SimState } from './state.js';

export { KfState } from './kf-state.js';

/** The simulator's shared checks: the caller's account from its access_token, and fault injection by path. */
export interface KfHooks {
  /** The account, or undefined once a token error or a fault was answered. */
  authorise(req: FastifyRequest, reply: FastifyReply): Promise<string | undefined>;
  /** True when a fault already answered the call. */
  intercept(req: FastifyRequest, reply: FastifyReply, appId: string | undefined): Promise<boolean>;
}

/** What the customer-service routes share: the simulator's state, its checks, and the Official Account gate. */
export interface KfContext {
  state: SimState;
  kf: KfState;
  hooks: KfHooks;
  /** The Official Account calling, or undefined once the error was answered (48001 for a Mini Program). */
  official(req: FastifyRequest, reply: FastifyReply): Promise<string | undefined>;
  /** The Official Account calling and the agent its JSON body names; undefined once an error was answered. */
  officialAgent(req: FastifyRequest, reply: FastifyReply): Promise<AgentCall | undefined>;
}

/** A call about one agent: the account, the agent its body's `kf_account` names, and the body's fields. */
export interface AgentCall {
  appId: string;
  agent: SimAgent;
  body: Record<string, unknown>;
}

/**
 * WeChat's customer-service management API for Official Accounts, with its shapes and errcodes: agents
 * (`customservice/kfaccount/*`, `getkflist`, `getonlinekflist`) and sessions (`customservice/kfsession/*`);
 * a Mini Program calling them gets 48001. Also `sns/jscode2session` for Mini Programs and Mini Games.
 */
export function kfRoutes(app: FastifyInstance, state: SimState, kf: KfState, hooks: KfHooks): void {
  const official = async (req: FastifyRequest, reply: FastifyReply): Promise<string | undefined> => {
    const appId = await hooks.authorise(req, reply);
    if (!appId) return undefined;
    if (state.accounts.get(appId)?.type !== 'officialaccount') {
      await reply.send(err(48001, 'api unauthorized'));
      return undefined;
    }
    return appId;
  };
  const officialAgent = async (req: FastifyRequest, reply: FastifyReply): Promise<AgentCall | undefined> => {
    const appId = await official(req, reply);
    if (!appId) return undefined;
    const body = jsonFields(req);
    const agent = kf.agentsOf(appId).get(stringField(body.kf_account));
    if (agent) return { appId, agent, body };
    await reply.send(err(65401, 'invalid kf_account'));
    return undefined;
  };
  const context: KfContext = { state, kf, hooks, official, officialAgent };
  kfAgentRoutes(app, context);
  kfBindingRoutes(app, context);
  kfSessionRoutes(app, context);
  loginRoutes(app, context);
}
