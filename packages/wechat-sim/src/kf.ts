import { randomBytes } from 'node:crypto';
import { AGENT_ACCOUNT, type KfAgent, MAX_NICKNAME } from '@wx-kf/shared/api';
import { OPENID_PATTERN } from '@wx-kf/shared/wechat';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parseJsonBody } from './json-body.js';
import type { SimState } from './state.js';

interface SimAgent extends KfAgent {
  online: boolean;
}

/** Official Account agents, sessions and the waiting queue; Mini Program login codes (jscode2session). */
export class KfState {
  /** appId → agents by kf_account. */
  readonly agents = new Map<string, Map<string, SimAgent>>();
  /** `${appId}:${openid}` → the session's agent and creation time (s). */
  readonly sessions = new Map<string, { agent: string; createtime: number }>();
  /** appId → users waiting, with the time of their latest message (s). */
  readonly waiting = new Map<string, Map<string, number>>();
  /** Login codes handed to a Mini Program (single use, 5 minutes). */
  readonly codes = new Map<
    string,
    { appId: string; openid: string; unionid?: string; risky: boolean; expiresAt: number }
  >();
  /** Every session_key handed out (tests check none reaches a log). */
  readonly sessionKeys: string[] = [];
  private nextId = 1001;

  reset(): void {
    this.agents.clear();
    this.sessions.clear();
    this.waiting.clear();
    this.codes.clear();
    this.sessionKeys.length = 0;
  }

  agentsOf(appId: string): Map<string, SimAgent> {
    let agents = this.agents.get(appId);
    if (!agents) {
      agents = new Map();
      this.agents.set(appId, agents);
    }
    return agents;
  }

  newAgent(account: string, nickname: string): SimAgent {
    const id = String(this.nextId++);
    return { kf_account: account, kf_nick: nickname, kf_id: id, kf_headimgurl: '', online: false };
  }
}

type Query = Record<string, string | undefined>;
const ok = { errcode: 0, errmsg: 'ok' };
const err = (errcode: number, errmsg: string) => ({ errcode, errmsg });
const body = (req: FastifyRequest): Record<string, unknown> => parseJsonBody(req.body) ?? {};
const str = (v: unknown) => (typeof v === 'string' ? v : '');

/** The simulator's shared checks: the caller's account from its access_token, and fault injection by path. */
export interface KfHooks {
  /** The account, or undefined once a token error or a fault was answered. */
  authorise(req: FastifyRequest, reply: FastifyReply): Promise<string | undefined>;
  /** True when a fault already answered the call. */
  intercept(req: FastifyRequest, reply: FastifyReply, appId: string | undefined): Promise<boolean>;
}

/**
 * WeChat's customer-service management API for Official Accounts, with its shapes and errcodes: agents
 * (`customservice/kfaccount/*`, `getkflist`, `getonlinekflist`) and sessions (`customservice/kfsession/*`);
 * a Mini Program calling them gets 48001. Also `sns/jscode2session` for Mini Programs and Mini Games.
 */
export function kfRoutes(app: FastifyInstance, state: SimState, kf: KfState, hooks: KfHooks): void {
  /** The Official Account calling, or undefined once the error was answered. */
  const official = async (req: FastifyRequest, reply: FastifyReply): Promise<string | undefined> => {
    const appId = await hooks.authorise(req, reply);
    if (!appId) return undefined;
    if (state.accounts.get(appId)?.type !== 'officialaccount') {
      await reply.send(err(48001, 'api unauthorized'));
      return undefined;
    }
    return appId;
  };
  const agentOf = (appId: string, account: string) => kf.agentsOf(appId).get(account);

  app.get('/cgi-bin/customservice/getkflist', async (req, reply) => {
    const appId = await official(req, reply);
    if (!appId) return reply;
    return { kf_list: [...kf.agentsOf(appId).values()].map(({ online: _online, ...agent }) => agent) };
  });

  app.get('/cgi-bin/customservice/getonlinekflist', async (req, reply) => {
    const appId = await official(req, reply);
    if (!appId) return reply;
    const online = [...kf.agentsOf(appId).values()].filter((a) => a.online);
    return {
      kf_online_list: online.map((a) => ({
        kf_account: a.kf_account,
        status: 1,
        kf_id: a.kf_id,
        accepted_case: [...kf.sessions.entries()].filter(
          ([k, s]) => k.startsWith(`${appId}:`) && s.agent === a.kf_account,
        ).length,
      })),
    };
  });

  app.post('/customservice/kfaccount/add', async (req, reply) => {
    const appId = await official(req, reply);
    if (!appId) return reply;
    const b = body(req);
    const account = str(b.kf_account);
    const nickname = str(b.nickname);
    if (!AGENT_ACCOUNT.test(account)) return err(65404, 'invalid kf_account');
    if ([...nickname].length === 0 || [...nickname].length > MAX_NICKNAME) return err(65403, 'invalid nickname');
    const agents = kf.agentsOf(appId);
    if (agents.has(account)) return err(65406, 'kf_account exsited');
    if (agents.size >= 100) return err(65405, 'kf account count exceeded');
    agents.set(account, kf.newAgent(account, nickname));
    return ok;
  });

  app.post('/customservice/kfaccount/update', async (req, reply) => {
    const appId = await official(req, reply);
    if (!appId) return reply;
    const b = body(req);
    const agent = agentOf(appId, str(b.kf_account));
    if (!agent) return err(65401, 'invalid kf_account');
    const nickname = str(b.nickname);
    if ([...nickname].length === 0 || [...nickname].length > MAX_NICKNAME) return err(65403, 'invalid nickname');
    agent.kf_nick = nickname;
    return ok;
  });

  app.get('/customservice/kfaccount/del', async (req, reply) => {
    const appId = await official(req, reply);
    if (!appId) return reply;
    const account = (req.query as Query).kf_account ?? '';
    if (!kf.agentsOf(appId).delete(account)) return err(65401, 'invalid kf_account');
    return ok;
  });

  app.post('/customservice/kfaccount/inviteworker', async (req, reply) => {
    const appId = await official(req, reply);
    if (!appId) return reply;
    const b = body(req);
    const agent = agentOf(appId, str(b.kf_account));
    if (!agent) return err(65401, 'invalid kf_account');
    const wx = str(b.invite_wx);
    if (!/^[A-Za-z][A-Za-z0-9_-]{5,19}$/.test(wx)) return err(65409, 'invalid invite_wx');
    if (agent.kf_wx) return err(65412, 'kf_account already bound to a wechat id');
    if (agent.invite_status === 'waiting') return err(65411, 'an invitation is already waiting for this kf_account');
    Object.assign(agent, {
      invite_wx: wx,
      invite_status: 'waiting',
      invite_expire_time: Math.floor(state.now() / 1000) + 7 * 86_400,
    });
    return ok;
  });

  app.post('/customservice/kfaccount/uploadheadimg', async (req, reply) => {
    const appId = await official(req, reply);
    if (!appId) return reply;
    const agent = agentOf(appId, (req.query as Query).kf_account ?? '');
    if (!agent) return err(65401, 'invalid kf_account');
    if (!req.isMultipart()) return err(41005, 'media data missing');
    const file = await req.file();
    if (!file) return err(41005, 'media data missing');
    if (file.fieldname !== 'media') return err(41005, 'media field missing');
    const data = await file.toBuffer();
    if (data.length === 0) return err(40009, 'invalid image size');
    if (data[0] !== 0xff || data[1] !== 0xd8) return err(40005, 'invalid file type');
    agent.kf_headimgurl = `https://mmbiz.qpic.cn/sim/kf/${agent.kf_id}/${randomBytes(4).toString('hex')}`;
    return ok;
  });

  app.post('/customservice/kfsession/create', async (req, reply) => {
    const appId = await official(req, reply);
    if (!appId) return reply;
    const b = body(req);
    const agent = agentOf(appId, str(b.kf_account));
    const openid = str(b.openid);
    if (!agent) return err(65401, 'invalid kf_account');
    if (!OPENID_PATTERN.test(openid)) return err(40003, 'invalid openid');
    if (!agent.kf_wx) return err(65402, 'kf_account not bound to a wechat id yet');
    if (!agent.online) return err(65415, 'kf_account is offline');
    const current = kf.sessions.get(`${appId}:${openid}`);
    if (current && current.agent !== agent.kf_account) return err(65414, 'the user is being served by another kf');
    kf.sessions.set(`${appId}:${openid}`, { agent: agent.kf_account, createtime: Math.floor(state.now() / 1000) });
    kf.waiting.get(appId)?.delete(openid);
    return ok;
  });

  app.post('/customservice/kfsession/close', async (req, reply) => {
    const appId = await official(req, reply);
    if (!appId) return reply;
    const b = body(req);
    const agent = agentOf(appId, str(b.kf_account));
    if (!agent) return err(65401, 'invalid kf_account');
    const key = `${appId}:${str(b.openid)}`;
    if (kf.sessions.get(key)?.agent !== agent.kf_account) return err(65416, 'invalid parameter: no such session');
    kf.sessions.delete(key);
    return ok;
  });

  app.get('/customservice/kfsession/getsession', async (req, reply) => {
    const appId = await official(req, reply);
    if (!appId) return reply;
    const openid = (req.query as Query).openid ?? '';
    if (!OPENID_PATTERN.test(openid)) return err(40003, 'invalid openid');
    const session = kf.sessions.get(`${appId}:${openid}`);
    return { ...ok, createtime: session?.createtime ?? 0, kf_account: session?.agent ?? '' };
  });

  app.get('/customservice/kfsession/getsessionlist', async (req, reply) => {
    const appId = await official(req, reply);
    if (!appId) return reply;
    const account = (req.query as Query).kf_account ?? '';
    if (!agentOf(appId, account)) return err(65401, 'invalid kf_account');
    const sessionlist = [...kf.sessions.entries()]
      .filter(([k, s]) => k.startsWith(`${appId}:`) && s.agent === account)
      .map(([k, s]) => ({ createtime: s.createtime, openid: k.slice(appId.length + 1) }));
    return { sessionlist };
  });

  app.get('/customservice/kfsession/getwaitcase', async (req, reply) => {
    const appId = await official(req, reply);
    if (!appId) return reply;
    const waiting = [...(kf.waiting.get(appId) ?? new Map<string, number>()).entries()];
    return {
      count: waiting.length,
      waitcaselist: waiting.slice(0, 100).map(([openid, t]) => ({ latest_time: t, openid })),
    };
  });

  // Mini Program / Mini Game login: signed with the AppSecret, not a token. Faults apply as to other paths.
  app.get('/sns/jscode2session', async (req, reply) => {
    const q = req.query as Query;
    if (await hooks.intercept(req, reply, q.appid)) return reply;
    if (q.grant_type !== 'authorization_code') return err(40002, 'invalid grant_type');
    const auth = state.authenticate(q.appid, q.secret);
    if (!auth.ok) return err(auth.errcode, auth.errmsg);
    if (state.accounts.get(auth.appId)?.type !== 'miniprogram') return err(40013, 'invalid appid');
    const code = kf.codes.get(q.js_code ?? '');
    if (!code || code.appId !== auth.appId || state.now() >= code.expiresAt) return err(40029, 'invalid code');
    kf.codes.delete(q.js_code ?? '');
    if (code.risky) return err(40226, 'high risk user');
    const sessionKey = randomBytes(16).toString('base64');
    kf.sessionKeys.push(sessionKey);
    return { openid: code.openid, ...(code.unionid ? { unionid: code.unionid } : {}), session_key: sessionKey };
  });

  // Control (not WeChat's API): agents going online or accepting an invitation, users waiting, login codes.
  app.post('/__sim/kf/agent', async (req, reply) => {
    const b = body(req);
    const agent = agentOf(str(b.appId), str(b.kf_account));
    if (!agent) return reply.code(404).send({ error: 'no such agent' });
    if (typeof b.online === 'boolean') agent.online = b.online;
    if (b.accept === true && agent.invite_wx) {
      Object.assign(agent, { kf_wx: agent.invite_wx, invite_status: undefined, invite_wx: undefined });
      delete agent.invite_expire_time;
    }
    return ok;
  });
  app.post('/__sim/kf/waiting', async (req) => {
    const b = body(req);
    let waiting = kf.waiting.get(str(b.appId));
    if (!waiting) {
      waiting = new Map();
      kf.waiting.set(str(b.appId), waiting);
    }
    waiting.set(str(b.openid), Math.floor(state.now() / 1000));
    return ok;
  });
  app.post('/__sim/login', async (req, reply) => {
    const b = body(req);
    if (!b.appId || !b.openid) return reply.code(400).send({ error: 'appId and openid are required' });
    const code = `SIMCODE${randomBytes(12).toString('hex')}`;
    kf.codes.set(code, {
      appId: str(b.appId),
      openid: str(b.openid),
      ...(b.unionid ? { unionid: str(b.unionid) } : {}),
      risky: b.risky === true,
      expiresAt: state.now() + 5 * 60_000,
    });
    return { code };
  });
}
