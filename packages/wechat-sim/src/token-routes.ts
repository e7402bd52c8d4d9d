import type { FastifyInstance } from 'fastify';
import { err } from './answers.js';
import type { CallGate } from './gate.js';
import { parseJsonBody, stringParam } from './json-body.js';
import type { SimState } from './state.js';

/** `GET /cgi-bin/token` and `POST /cgi-bin/stable_token`, counting every request (a fault's too). */
export function tokenRoutes(app: FastifyInstance, state: SimState, gate: CallGate): void {
  app.get('/cgi-bin/token', async (req, reply) => {
    const appId = stringParam(req.query, 'appid');
    if (appId) state.countTokenRequest(appId, 'classic');
    if (await gate.intercept(req, reply, appId)) return reply;
    if (stringParam(req.query, 'grant_type') !== 'client_credential') return err(40002, 'invalid grant_type');
    const auth = state.authenticate(appId, stringParam(req.query, 'secret'));
    return auth.ok ? state.classicToken(auth.appId) : err(auth.errcode, auth.errmsg);
  });

  app.post('/cgi-bin/stable_token', async (req, reply) => {
    const body = parseJsonBody(req.body);
    const appId = typeof body?.appid === 'string' ? body.appid : undefined;
    if (appId) state.countTokenRequest(appId, 'stable');
    if (await gate.intercept(req, reply, appId)) return reply;
    if (!body) return err(47001, 'data format error');
    if (body.grant_type !== 'client_credential') return err(40002, 'invalid grant_type');
    const auth = state.authenticate(appId, typeof body.secret === 'string' ? body.secret : undefined);
    return auth.ok ? state.stableToken(auth.appId, body.force_refresh === true) : err(auth.errcode, auth.errmsg);
  });
}
