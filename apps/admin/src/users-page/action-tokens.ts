import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';

/** The operator actions of the users page, each confirmed on a page of its own. */
export const USER_ACTIONS = ['close-handoff', 'erase'] as const;
export type UserAction = (typeof USER_ACTIONS)[number];
export const isUserAction = (value: string): value is UserAction => USER_ACTIONS.some((a) => a === value);

/** How long a confirm page's form stays valid. */
const TOKEN_TTL_MS = 10 * 60_000;

/**
 * The tokens that make a POST of the users page a confirmed one. The pages sit behind basic auth, which a browser
 * sends with any request to this origin, a form another site submits too: so every action needs a token only the
 * confirm page carries, an HMAC of (action, account, user, expiry) under a key derived from the admin password (any
 * admin listener of the deployment accepts it; changing the password voids them all).
 */
export class ActionTokens {
  private readonly key: Buffer;

  constructor(
    secret: string,
    private readonly now: () => number = Date.now,
  ) {
    if (!secret) throw new Error('the users page needs ADMIN_PASSWORD');
    this.key = createHmac('sha256', secret).update('wx-kf users page actions').digest();
  }

  private mac(action: UserAction, appId: string, openid: string, until: number): Buffer {
    return createHmac('sha256', this.key).update(`${action}\n${appId}\n${openid}\n${until}`).digest();
  }

  /** A token for one action on one user, valid for 10 minutes. */
  issue(action: UserAction, appId: string, openid: string): string {
    const until = this.now() + TOKEN_TTL_MS;
    return `${until}.${this.mac(action, appId, openid, until).toString('base64url')}`;
  }

  /** Whether `token` was issued for this action on this user and has not expired. */
  valid(token: unknown, action: UserAction, appId: string, openid: string): boolean {
    if (typeof token !== 'string') return false;
    const match = /^(\d{13})\.([A-Za-z0-9_-]{43})$/.exec(token);
    if (!match) return false;
    const until = Number(match[1]);
    const presented = Buffer.from(match[2] ?? '', 'base64url');
    const expected = this.mac(action, appId, openid, until);
    return until > this.now() && presented.length === expected.length && timingSafeEqual(presented, expected);
  }
}

/**
 * Whether a request comes from a page of this listener, as far as the browser says: `Sec-Fetch-Site` (when sent)
 * must be `same-origin`, and `Origin` (when sent) must name this host. A browser that sends neither is still held
 * by the token.
 */
export function sameOrigin(req: FastifyRequest): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') return false;
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    // Both through URL, so a default port (`:80`, `:443`) reads the same on either side.
    return new URL(origin).host === new URL(`${req.protocol}://${req.host}`).host;
  } catch {
    return false;
  }
}
