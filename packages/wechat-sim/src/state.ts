import { randomBytes } from 'node:crypto';
import { actionTime, WINDOW_GRANTS, type WindowTrigger, windowGrant } from '@wx-kf/shared/conversation';
import type { AccountType } from '@wx-kf/shared/wechat';

export interface SimAccount {
  appId: string;
  appSecret: string;
  type: AccountType;
}

export interface RecordedMessage {
  appId: string;
  touser: string;
  msgtype: string;
  body: Record<string, unknown>;
  at: number;
}

interface IssuedToken {
  appId: string;
  source: 'classic' | 'stable';
  expiresAt: number;
  /** Set when a newer token replaces it: valid until then (the overlap), invalid after. */
  invalidAt?: number;
}

export interface SimOptions {
  accounts: SimAccount[];
  /** Token lifetime in seconds (WeChat: 7200). */
  tokenTtlSeconds?: number;
  /** How long a replaced cgi-bin/token stays valid (WeChat: 5 min). */
  overlapMs?: number;
  /**
   * Enforce the customer-service windows (docs/wechat-protocol.md §7.4, the reading in docs/architecture.md):
   * a message 5 in 48 h; MP entering the chat 2 in 1 min; OA click, subscribe, scan 3 in 1 min; never added up.
   */
  sendWindows?: boolean;
  /** Clock, in ms; tests move time by passing their own. */
  now?: () => number;
}

export type TokenCheck = { ok: true; appId: string } | { ok: false; errcode: number; errmsg: string };

const STABLE_ROTATE_MS = 300_000;

interface Window {
  until: number;
  left: number;
}

/** WeChat's server-side state as far as wx-kf can observe it: tokens, accepted messages, media, windows. */
export class SimState {
  readonly accounts = new Map<string, SimAccount>();
  readonly messages: RecordedMessage[] = [];
  readonly typing: { appId: string; touser: string; command: string; at: number }[] = [];
  readonly tokenRequests = new Map<string, { classic: number; stable: number }>();
  /** stable_token calls with force_refresh: true (wx-kf must never make one on its own). */
  forceRefreshes = 0;
  private readonly tokens = new Map<string, IssuedToken>();
  private readonly current = new Map<string, string>(); // `${source}:${appId}` -> token
  readonly media = new Map<
    string,
    { appId: string; type: string; data: Buffer; filename: string; expiresAt: number }
  >();
  private readonly windows = new Map<string, Window>(); // `${appId}:${openid}`
  readonly now: () => number;
  readonly options: Required<Omit<SimOptions, 'now' | 'accounts'>>;

  constructor(options: SimOptions) {
    for (const account of options.accounts) this.accounts.set(account.appId, account);
    this.now = options.now ?? Date.now;
    this.options = {
      tokenTtlSeconds: options.tokenTtlSeconds ?? 7200,
      overlapMs: options.overlapMs ?? 300_000,
      sendWindows: options.sendWindows ?? false,
    };
  }

  reset(): void {
    this.messages.length = 0;
    this.typing.length = 0;
    this.tokenRequests.clear();
    this.forceRefreshes = 0;
    this.tokens.clear();
    this.current.clear();
    this.media.clear();
    this.windows.clear();
  }

  /** Checks AppID and secret as the token endpoints do: 40013 unknown AppID, 40125 wrong secret. */
  authenticate(appId: string | undefined, secret: string | undefined): TokenCheck {
    const account = appId ? this.accounts.get(appId) : undefined;
    if (!account) return { ok: false, errcode: 40013, errmsg: 'invalid appid' };
    if (secret !== account.appSecret) return { ok: false, errcode: 40125, errmsg: 'invalid appsecret' };
    return { ok: true, appId: account.appId };
  }

  /** Counts a token request as WeChat would see it (also the ones a fault answers). */
  countTokenRequest(appId: string, source: 'classic' | 'stable'): void {
    const counts = this.tokenRequests.get(appId) ?? { classic: 0, stable: 0 };
    counts[source]++;
    this.tokenRequests.set(appId, counts);
  }

  private issue(appId: string, source: 'classic' | 'stable'): { access_token: string; expires_in: number } {
    const token = `SIM_${source === 'classic' ? 'C' : 'S'}_${randomBytes(24).toString('base64url')}`;
    const expiresAt = this.now() + this.options.tokenTtlSeconds * 1000;
    this.tokens.set(token, { appId, source, expiresAt });
    this.current.set(`${source}:${appId}`, token);
    return { access_token: token, expires_in: this.options.tokenTtlSeconds };
  }

  /** cgi-bin/token: always a new token; the previous one keeps working for the overlap only. */
  classicToken(appId: string): { access_token: string; expires_in: number } {
    const previous = this.current.get(`classic:${appId}`);
    const old = previous ? this.tokens.get(previous) : undefined;
    if (old) old.invalidAt = Math.min(old.expiresAt, this.now() + this.options.overlapMs);
    return this.issue(appId, 'classic');
  }

  /** cgi-bin/stable_token: the same token while it has > 5 min left; force_refresh replaces it at once. */
  stableToken(appId: string, forceRefresh: boolean): { access_token: string; expires_in: number } {
    const currentToken = this.current.get(`stable:${appId}`);
    const current = currentToken ? this.tokens.get(currentToken) : undefined;
    const now = this.now();
    if (current && currentToken && !forceRefresh && current.expiresAt - now > STABLE_ROTATE_MS) {
      return { access_token: currentToken, expires_in: Math.floor((current.expiresAt - now) / 1000) };
    }
    if (forceRefresh) this.forceRefreshes++;
    if (current && forceRefresh) current.invalidAt = now;
    return this.issue(appId, 'stable');
  }

  /** What custom/send and friends answer for this access_token. */
  checkToken(token: string | undefined): TokenCheck {
    if (!token) return { ok: false, errcode: 41001, errmsg: 'access_token missing' };
    const issued = this.tokens.get(token);
    const now = this.now();
    if (!issued || (issued.invalidAt !== undefined && now >= issued.invalidAt)) {
      return { ok: false, errcode: 40001, errmsg: 'invalid credential, access_token is invalid or not latest' };
    }
    if (now >= issued.expiresAt) return { ok: false, errcode: 42001, errmsg: 'access_token expired' };
    return { ok: true, appId: issued.appId };
  }

  /** Invalidates every token of an account, as a leaked-secret reset would. */
  invalidateTokens(appId: string): void {
    for (const issued of this.tokens.values()) if (issued.appId === appId) issued.invalidAt = this.now();
    this.current.delete(`classic:${appId}`);
    this.current.delete(`stable:${appId}`);
  }

  /**
   * A user action that opens a sending window (tests and the push client report the pushes they send). As
   * WeChat words it, counts do not add up: the sends left become the larger of what is left and what the action
   * allows, and the window ends at the later of both ends.
   */
  userActed(appId: string, openid: string, action: WindowTrigger, at = this.now()): void {
    const grant = WINDOW_GRANTS[action];
    const key = `${appId}:${openid}`;
    const current = this.windows.get(key);
    const open = current && this.now() < current.until;
    this.windows.set(key, {
      until: Math.max(at + grant.ms, open ? current.until : 0),
      left: Math.max(grant.count, open ? current.left : 0),
    });
  }

  /** The window a pushed message opens, as WeChat would see it (nothing for messages that grant none). */
  observe(appId: string, message: Record<string, unknown>): void {
    const account = this.accounts.get(appId);
    const grant = account ? windowGrant(account.type, message) : undefined;
    const openid = message.FromUserName;
    if (!grant || typeof openid !== 'string') return;
    this.userActed(appId, openid, grant.trigger, actionTime(message.CreateTime) ?? this.now());
  }

  /** The user's window now (tests), or undefined when none is open. */
  windowOf(appId: string, openid: string): { until: number; left: number } | undefined {
    const window = this.windows.get(`${appId}:${openid}`);
    return window && this.now() < window.until ? { ...window } : undefined;
  }

  /** 0 when a message may be sent now (and consumes it), else 45015 or 45047. */
  takeWindow(appId: string, openid: string): 0 | 45015 | 45047 {
    if (!this.options.sendWindows) return 0;
    const window = this.windows.get(`${appId}:${openid}`);
    if (!window || this.now() >= window.until) return 45015;
    if (window.left <= 0) return 45047;
    window.left--;
    return 0;
  }

  messagesFor(appId?: string, touser?: string): RecordedMessage[] {
    return this.messages.filter((m) => (!appId || m.appId === appId) && (!touser || m.touser === touser));
  }

  tokenRequestCount(appId: string): number {
    const counts = this.tokenRequests.get(appId);
    return counts ? counts.classic + counts.stable : 0;
  }
}
