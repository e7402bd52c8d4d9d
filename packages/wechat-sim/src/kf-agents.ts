import { randomBytes } from 'node:crypto';
import { AGENT_ACCOUNT, MAX_NICKNAME } from '@wx-kf/shared/api';
import type { FastifyInstance } from 'fastify';
import { err, ok } from './answers.js';
import { jsonFields, stringField, stringParam } from './json-body.js';
import type { KfContext } from './kf.js';
import { mediaUpload } from './upload.js';

/** A nickname WeChat accepts: 1 to MAX_NICKNAME characters. */
const validNickname = (nickname: string) => [...nickname].length > 0 && [...nickname].length <= MAX_NICKNAME;

/** Agent accounts: the lists (`getkflist`, `getonlinekflist`) and `customservice/kfaccount/add|update|del`. */
export function kfAgentRoutes(app: FastifyInstance, { kf, official, officialAgent }: KfContext): void {
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
        accepted_case: kf.sessionsOf(appId, a.kf_account).length,
      })),
    };
  });

  app.post('/customservice/kfaccount/add', async (req, reply) => {
    const appId = await official(req, reply);
    if (!appId) return reply;
    const b = jsonFields(req);
    const account = stringField(b.kf_account);
    const nickname = stringField(b.nickname);
    if (!AGENT_ACCOUNT.test(account)) return err(65404, 'invalid kf_account');
    if (!validNickname(nickname)) return err(65403, 'invalid nickname');
    const agents = kf.agentsOf(appId);
    if (agents.has(account)) return err(65406, 'kf_account exsited');
    if (agents.size >= 100) return err(65405, 'kf account count exceeded');
    agents.set(account, kf.newAgent(account, nickname));
    return ok;
  });

  app.post('/customservice/kfaccount/update', async (req, reply) => {
    const call = await officialAgent(req, reply);
    if (!call) return reply;
    const { agent, body } = call;
    const nickname = stringField(body.nickname);
    if (!validNickname(nickname)) return err(65403, 'invalid nickname');
    agent.kf_nick = nickname;
    return ok;
  });

  app.get('/customservice/kfaccount/del', async (req, reply) => {
    const appId = await official(req, reply);
    if (!appId) return reply;
    const account = stringParam(req.query, 'kf_account') ?? '';
    if (!kf.agentsOf(appId).delete(account)) return err(65401, 'invalid kf_account');
    return ok;
  });
}

/**
 * An agent's person and face: `kfaccount/inviteworker` (bind a WeChat ID), `kfaccount/uploadheadimg`, and the
 * control route that stands in for the person (`/__sim/kf/agent`: comes online, accepts the invitation).
 */
export function kfBindingRoutes(app: FastifyInstance, { state, kf, official, officialAgent }: KfContext): void {
  app.post('/customservice/kfaccount/inviteworker', async (req, reply) => {
    const call = await officialAgent(req, reply);
    if (!call) return reply;
    const { agent, body } = call;
    const wx = stringField(body.invite_wx);
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
    const agent = kf.agentsOf(appId).get(stringParam(req.query, 'kf_account') ?? '');
    if (!agent) return err(65401, 'invalid kf_account');
    const upload = await mediaUpload(req);
    if ('errcode' in upload) return upload;
    if (upload.data.length === 0) return err(40009, 'invalid image size');
    if (upload.data[0] !== 0xff || upload.data[1] !== 0xd8) return err(40005, 'invalid file type');
    agent.kf_headimgurl = `https://mmbiz.qpic.cn/sim/kf/${agent.kf_id}/${randomBytes(4).toString('hex')}`;
    return ok;
  });

  // Control (not WeChat's API): an agent going online or accepting the invitation.
  app.post('/__sim/kf/agent', async (req, reply) => {
    const b = jsonFields(req);
    const agent = kf.agentsOf(stringField(b.appId)).get(stringField(b.kf_account));
    if (!agent) return reply.code(404).send({ error: 'no such agent' });
    if (typeof b.online === 'boolean') agent.online = b.online;
    if (b.accept === true && agent.invite_wx) {
      Object.assign(agent, { kf_wx: agent.invite_wx, invite_status: undefined, invite_wx: undefined });
      delete agent.invite_expire_time;
    }
    return ok;
  });
}
