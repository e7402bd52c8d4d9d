import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { err } from './answers.js';
import { jsonFields, stringField, stringParam } from './json-body.js';
import type { KfContext } from './kf.js';

/**
 * Mini Program / Mini Game login: `sns/jscode2session`, signed with the AppSecret, not a token (faults apply
 * as to other paths), and the control route that hands out a login code (`/__sim/login`).
 */
export function loginRoutes(app: FastifyInstance, { state, kf, hooks }: KfContext): void {
  app.get('/sns/jscode2session', async (req, reply) => {
    const appid = stringParam(req.query, 'appid');
    if (await hooks.intercept(req, reply, appid)) return reply;
    if (stringParam(req.query, 'grant_type') !== 'authorization_code') return err(40002, 'invalid grant_type');
    const auth = state.authenticate(appid, stringParam(req.query, 'secret'));
    if (!auth.ok) return err(auth.errcode, auth.errmsg);
    if (state.accounts.get(auth.appId)?.type !== 'miniprogram') return err(40013, 'invalid appid');
    const jsCode = stringParam(req.query, 'js_code') ?? '';
    const code = kf.codes.get(jsCode);
    if (!code || code.appId !== auth.appId || state.now() >= code.expiresAt) return err(40029, 'invalid code');
    kf.codes.delete(jsCode);
    if (code.risky) return err(40226, 'high risk user');
    const sessionKey = randomBytes(16).toString('base64');
    kf.sessionKeys.push(sessionKey);
    return { openid: code.openid, ...(code.unionid ? { unionid: code.unionid } : {}), session_key: sessionKey };
  });

  app.post('/__sim/login', async (req, reply) => {
    const b = jsonFields(req);
    if (!b.appId || !b.openid) return reply.code(400).send({ error: 'appId and openid are required' });
    const code = `SIMCODE${randomBytes(12).toString('hex')}`;
    kf.codes.set(code, {
      appId: stringField(b.appId),
      openid: stringField(b.openid),
      ...(b.unionid ? { unionid: stringField(b.unionid) } : {}),
      risky: b.risky === true,
      expiresAt: state.now() + 5 * 60_000,
    });
    return { code };
  });
}
