import basicAuth from '@fastify/basic-auth';
import type { Config } from '@wx-kf/shared/config';
import type { Logger } from '@wx-kf/shared/log';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { digestEqual, sha256 } from '../digest.js';
import { WindowCounter } from '../rate-limit.js';
import { RateLimited, Refusal, Unauthorized } from '../refusal.js';

/**
 * Per minute: wrong credentials per presented user name or API key (the right ones are never refused), and
 * API calls per client address.
 */
export const ADMIN_LIMITS = { failedLoginsPerMinute: 10, sendsPerMinute: 600 };

export interface AdminAuthOptions {
  /** The admin's user name, password (required) and API key (unset: the API answers 403). */
  credentials: Pick<Config['admin'], 'user' | 'password' | 'apiKey'>;
  limits: typeof ADMIN_LIMITS;
  logger: Logger;
}

type Presented = 'basic auth' | 'send API key';

/**
 * The admin listener's two gates: basic auth for the dashboard and /metrics, the bearer API key (then the
 * per-client rate) for `/api/`. Both check before the body is read, and refuse by throwing: 401, or 429 once a
 * presented user name or key failed too often this minute.
 */
export class AdminAuth {
  private readonly password: string;
  private readonly failures: WindowCounter;
  private readonly calls: WindowCounter;

  constructor(private readonly options: AdminAuthOptions) {
    const { password } = options.credentials;
    if (!password) throw new Error('the admin listener needs ADMIN_PASSWORD');
    this.password = password;
    this.failures = new WindowCounter(options.limits.failedLoginsPerMinute, 60_000);
    this.calls = new WindowCounter(options.limits.sendsPerMinute, 60_000);
  }

  /** Every route of `scope` needs the admin's user name and password (the browser is asked for them). */
  async requireBasicAuth(scope: FastifyInstance): Promise<void> {
    await scope.register(basicAuth, {
      validate: async (user, pass, req) => {
        // Both compared in full, in constant time, whichever is wrong (`&`, not `&&`).
        const ok = Number(digestEqual(user, this.options.credentials.user)) & Number(digestEqual(pass, this.password));
        if (!ok) this.refuse(req, 'basic auth', user, 'wrong user or password');
      },
      authenticate: { realm: 'wx-kf admin' },
    });
    scope.addHook('onRequest', scope.basicAuth);
  }

  /** Every route of `scope` needs `Authorization: Bearer <ADMIN_API_KEY>`, and counts against the client's rate. */
  requireApiKey(scope: FastifyInstance): void {
    scope.addHook('onRequest', async (req) => {
      const { apiKey } = this.options.credentials;
      if (!apiKey) throw new Refusal(403, 'disabled', 'set ADMIN_API_KEY to enable the send API');
      const auth = req.headers.authorization ?? '';
      const presented = auth.startsWith('Bearer ') ? auth.slice(7) : '';
      if (!digestEqual(presented, apiKey)) {
        this.refuse(req, 'send API key', presented, 'a valid Authorization: Bearer <ADMIN_API_KEY> is required');
      }
      if (this.calls.add(req.ip) > this.calls.limit) {
        throw new RateLimited(this.calls.retryAfter(req.ip), `at most ${this.calls.limit} send API calls a minute`);
      }
    });
  }

  /**
   * A wrong credential, counted against what was presented (the user name, or the key's digest), not the
   * client's address: behind a proxy every client has one address, and valid credentials are checked before
   * this, so they are never refused. 429 while that name or key is refused, else 401.
   */
  private refuse(req: FastifyRequest, what: Presented, presented: string, message: string): never {
    const id = `${what}:${sha256(presented)}`;
    const wait = this.failures.retryAfter(id);
    if (wait > 0) throw new RateLimited(wait, 'too many failed logins');
    if (this.failures.add(id) === this.failures.limit) {
      this.options.logger.warn(
        { ip: req.ip, what },
        'admin: too many failed logins; this user name or key is refused for a minute',
      );
    }
    throw new Unauthorized(message);
  }
}
