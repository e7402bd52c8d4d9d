import type { AccountConfig } from '@wx-kf/shared/config';
import { type Conversations, forgetUser } from '@wx-kf/shared/conversation';
import { OPENID_PATTERN } from '@wx-kf/shared/openid';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { KfOperations } from '../kf.js';
import type { Queues } from '../queues.js';
import { describeError } from '../refusal.js';
import { type ActionTokens, isUserAction, sameOrigin } from '../users-page/action-tokens.js';
import { PAGE_CSP, pagePath, STYLE } from '../users-page/html.js';
import { userRecord } from '../users-page/record.js';
import { confirmPage, erasedPage, lookupPage, problemPage, userPage } from '../users-page/views.js';

export interface UsersPageOptions {
  accounts: ReadonlyMap<string, AccountConfig>;
  conversations: Conversations;
  queues: Queues;
  kf: KfOperations;
  tokens: ActionTokens;
}

/** A string field of a parsed query, form or path (anything else, a repeated field too, reads as absent). */
function field(source: unknown, name: string): string | undefined {
  if (typeof source !== 'object' || source === null) return undefined;
  const value: unknown = Reflect.get(source, name);
  return typeof value === 'string' ? value.trim() : undefined;
}

/** The account and user a path names, or why the page refuses them (404 for an account, 400 for a user). */
function targetOf(
  accounts: ReadonlyMap<string, AccountConfig>,
  params: unknown,
): { appId: string; openid: string } | { status: number; problem: string } {
  const appId = field(params, 'appId') ?? '';
  const openid = field(params, 'openid') ?? '';
  if (!accounts.has(appId)) return { status: 404, problem: `"${appId.slice(0, 64)}" is not a configured account` };
  if (!OPENID_PATTERN.test(openid)) {
    return { status: 400, problem: 'an OpenID (or external_userid) is 1 to 64 of A-Z a-z 0-9 _ -' };
  }
  return { appId, openid };
}

const html = (reply: FastifyReply, status: number, page: string) =>
  reply.code(status).type('text/html; charset=utf-8').send(page);

/**
 * The conversation view behind the dashboard's login: `/users` looks a user up by account and OpenID (or WeCom
 * external_userid), `/users/<appId>/<openid>` shows their send window, handoff and timeline with links to their
 * jobs, and the operator's actions (close the handoff, erase the user), each confirmed on a page of its own whose
 * form carries a token (action-tokens.ts). Server-rendered HTML, every value escaped, no script, one stylesheet.
 */
export const usersPageRoutes: FastifyPluginAsync<UsersPageOptions> = async (app, options) => {
  const { accounts, conversations, queues, kf, tokens } = options;
  const choices = [...accounts.values()].map((a) => ({ appId: a.appId, type: a.type }));

  // The confirm forms post `token=…` URL-encoded; only this scope reads such bodies.
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: 4096 },
    (_req, body, done) => done(null, Object.fromEntries(new URLSearchParams(String(body)))),
  );
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    if (String(reply.getHeader('content-type') ?? '').startsWith('text/html')) {
      reply.header('content-security-policy', PAGE_CSP);
      reply.header('cache-control', 'no-store'); // a user's messages: not for any cache
      reply.header('referrer-policy', 'same-origin');
    }
    return payload;
  });

  const target = (params: unknown) => targetOf(accounts, params);

  app.get('/users/style.css', async (_req, reply) =>
    reply.type('text/css; charset=utf-8').header('cache-control', 'max-age=300').send(STYLE),
  );

  app.get('/users', async (req, reply) => {
    const appId = field(req.query, 'appId');
    const user = field(req.query, 'user');
    if (appId === undefined && user === undefined) return html(reply, 200, lookupPage(choices));
    const t = target({ appId, openid: user });
    if ('problem' in t) return html(reply, t.status, lookupPage(choices, t.problem, appId, user));
    return reply.redirect(pagePath(t.appId, t.openid), 303);
  });

  app.get('/users/:appId/:openid', async (req, reply) => {
    const t = target(req.params);
    if ('problem' in t) return html(reply, t.status, lookupPage(choices, t.problem));
    const record = await userRecord({ conversations, handoffs: kf.handoffs, queues }, t.appId, t.openid);
    return html(reply, 200, userPage(record, choices, field(req.query, 'done')));
  });

  app.get('/users/:appId/:openid/:action', async (req, reply) => {
    const action = field(req.params, 'action') ?? '';
    const t = target(req.params);
    if (!isUserAction(action)) return html(reply, 404, problemPage('Not found', 'no such action'));
    if ('problem' in t) return html(reply, t.status, lookupPage(choices, t.problem));
    return html(reply, 200, confirmPage(action, t.appId, t.openid, tokens.issue(action, t.appId, t.openid)));
  });

  app.post('/users/:appId/:openid/:action', async (req, reply) => {
    const action = field(req.params, 'action') ?? '';
    const t = target(req.params);
    if (!isUserAction(action)) return html(reply, 404, problemPage('Not found', 'no such action'));
    if ('problem' in t) return html(reply, t.status, lookupPage(choices, t.problem));
    const back = pagePath(t.appId, t.openid);
    if (!sameOrigin(req) || !tokens.valid(field(req.body, 'token'), action, t.appId, t.openid)) {
      const why =
        'Not confirmed: an action must be confirmed on its page here (the form may have expired). Nothing was done.';
      return html(reply, 403, problemPage('Not confirmed', why, back));
    }
    if (action === 'erase') {
      const erasure = await forgetUser(queues.connection, t.appId, t.openid);
      // Who was erased is an audit fact; nothing they said is in the line.
      req.log.info({ appId: t.appId, openid: t.openid, erased: erasure.erased }, 'admin: user erased (users page)');
      return html(reply, 200, erasedPage(erasure));
    }
    try {
      await kf.closeSession(t.appId, t.openid);
    } catch (error) {
      const known = describeError(error);
      if (!known) throw error;
      return html(reply, known.status, problemPage('The handoff was not closed', known.body.message, back));
    }
    return reply.redirect(`${back}?done=handoff-closed`, 303);
  });
};
