import { OPENID_PATTERN } from '@wx-kf/shared/wechat';
import type { FastifyInstance } from 'fastify';
import { err, ok } from './answers.js';
import { jsonFields, stringField, stringParam } from './json-body.js';
import type { KfContext } from './kf.js';

/**
 * Sessions between users and agents (`customservice/kfsession/create|close|getsession|getsessionlist|
 * getwaitcase`), and the control route that puts a user in the waiting queue (`/__sim/kf/waiting`).
 */
export function kfSessionRoutes(app: FastifyInstance, { state, kf, official, officialAgent }: KfContext): void {
  app.post('/customservice/kfsession/create', async (req, reply) => {
    const call = await officialAgent(req, reply);
    if (!call) return reply;
    const { appId, agent, body } = call;
    const openid = stringField(body.openid);
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
    const call = await officialAgent(req, reply);
    if (!call) return reply;
    const { appId, agent, body } = call;
    const key = `${appId}:${stringField(body.openid)}`;
    if (kf.sessions.get(key)?.agent !== agent.kf_account) return err(65416, 'invalid parameter: no such session');
    kf.sessions.delete(key);
    return ok;
  });

  app.get('/customservice/kfsession/getsession', async (req, reply) => {
    const appId = await official(req, reply);
    if (!appId) return reply;
    const openid = stringParam(req.query, 'openid') ?? '';
    if (!OPENID_PATTERN.test(openid)) return err(40003, 'invalid openid');
    const session = kf.sessions.get(`${appId}:${openid}`);
    return { ...ok, createtime: session?.createtime ?? 0, kf_account: session?.agent ?? '' };
  });

  app.get('/customservice/kfsession/getsessionlist', async (req, reply) => {
    const appId = await official(req, reply);
    if (!appId) return reply;
    const account = stringParam(req.query, 'kf_account') ?? '';
    if (!kf.agentsOf(appId).get(account)) return err(65401, 'invalid kf_account');
    return { sessionlist: kf.sessionsOf(appId, account) };
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

  // Control (not WeChat's API): a user waits for an agent.
  app.post('/__sim/kf/waiting', async (req) => {
    const b = jsonFields(req);
    kf.waitingOf(stringField(b.appId)).set(stringField(b.openid), Math.floor(state.now() / 1000));
    return ok;
  });
}
