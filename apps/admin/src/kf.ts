import {
  agentProblem,
  code2session,
  KfClient,
  TokenManager,
  WeChatApiError,
  WeChatClient,
  WeChatHttp,
} from '@wx-kf/shared/api';
import type { AccountConfig, Config } from '@wx-kf/shared/config';
import { type HandoffReason, type HandoffState, Handoffs, handoffAccounts } from '@wx-kf/shared/handoff';
import { clip, type Logger } from '@wx-kf/shared/log';
import { OPENID_PATTERN } from '@wx-kf/shared/openid';
import type { RedisClient } from '@wx-kf/shared/redis';
import { loadAccountRules } from '@wx-kf/shared/rules';
import { SERVICE_STATE, type WeComClient, wecomApi } from '@wx-kf/shared/wecom';
import { Refusal } from './refusal.js';

/** The queue CLI reads refusals as the admin API answers them. */
export { describeError } from './refusal.js';

/** A request refused before WeChat is asked: 400 and one line. */
const refused = (error: string, message: string) => new Refusal(400, error, message);

/** The one line for Mini Programs: they have no agent or session API. */
const NO_SESSION_API =
  'Mini Programs and Mini Games have no agent or session API (customservice/kfaccount, kfsession); nothing was sent to WeChat';

/**
 * The one line for WeCom customer-service corps: their people are WeCom servicers, set in WeCom's console, and a
 * session moves through kf/service_state, not through the Official Account API.
 */
const WECOM_NO_SESSION_API =
  'WeCom customer-service accounts (wecom-kf) have no Official Account agent or session API (customservice/kfaccount, kfsession): their servicers are set in WeCom; nothing was sent to WeChat or WeCom';

/** A handoff as the CLI and the API show it: `since` in ISO 8601, without the stored event-order mark. */
export interface HandoffView {
  open: boolean;
  agent?: string;
  reason: HandoffState['reason'];
  since: string;
}

export function handoffView(state: HandoffState): HandoffView {
  return {
    open: state.open,
    ...(state.agent ? { agent: state.agent } : {}),
    reason: state.reason,
    since: new Date(state.since).toISOString(),
  };
}

/** A WeCom customer's session with one customer-service account (kf/service_state/get). */
export interface WeComSessionView {
  openKfId: string;
  /** 0 new, 1 the bot, 2 queued for a person, 3 a person (`servicer`), 4 ended. */
  state: number;
  servicer?: string | undefined;
}

/**
 * What `session show` reports: wx-kf's handoff and, for Official Accounts, WeChat's session; for a WeCom corp,
 * the customer's session with each customer-service account asked about.
 */
export interface SessionView {
  appId: string;
  openid: string;
  handoff: HandoffView | null;
  wechat?: { agent?: string | undefined; createdAt?: number | undefined };
  wecom?: WeComSessionView[];
}

/**
 * The agents, sessions and login operations the queue CLI and the admin API share: Official Account agents
 * and sessions through the cluster's shared token (and the same errcode table), wx-kf's handoff kept in step,
 * and code2session. The WeChat client is made on first use (reads of the handoff state need none).
 */
export class KfOperations {
  private readonly accounts: Map<string, AccountConfig>;
  private readonly handoffAccounts: Set<string>;
  readonly handoffs: Handoffs;
  private api: { http: WeChatHttp; tokens: TokenManager; kf: KfClient } | undefined;
  private wecomApi: ReturnType<typeof wecomApi> | undefined;

  constructor(
    private readonly config: Config,
    private readonly redis: RedisClient,
    private readonly logger: Logger,
    onHandoff?: (change: 'opened' | 'closed', appId: string, reason: HandoffReason) => void,
  ) {
    this.accounts = new Map(config.accounts.map((a) => [a.appId, a]));
    this.handoffAccounts = handoffAccounts(config, loadAccountRules(config));
    this.handoffs = new Handoffs({ redis, idleMs: config.handoff.idleMs, logger, onChange: onHandoff });
  }

  private get client() {
    if (!this.api) {
      const http = new WeChatHttp({ baseUrl: this.config.api.base, proxy: this.config.api.proxy });
      const tokens = new TokenManager({
        redis: this.redis,
        http,
        accounts: this.config.accounts,
        source: this.config.api.tokenSource,
        logger: this.logger,
      });
      this.api = { http, tokens, kf: new KfClient(new WeChatClient(http, tokens, this.redis), http) };
    }
    return this.api;
  }

  /** WeCom's client for the wecom-kf corps, made on first use; its refusals read "WeCom refused: <errcode> …". */
  private async wecom<T>(op: (kf: WeComClient) => Promise<T>): Promise<T> {
    this.wecomApi ??= wecomApi({
      base: this.config.api.wecomBase,
      proxy: this.config.api.proxy,
      redis: this.redis,
      corps: this.config.accounts.filter((a) => a.type === 'wecom-kf'),
      logger: this.logger,
    });
    try {
      return await op(this.wecomApi.kf);
    } catch (error) {
      if (!(error instanceof WeChatApiError)) throw error;
      throw new Refusal(error.rule.http, 'wecom', `WeCom refused: ${error.errcode} ${error.errmsg}`);
    }
  }

  /** The customer-service accounts a WeCom session command is about: the one named, else every one of the corp. */
  private async kfAccounts(corpId: string, openKfId: string | undefined): Promise<string[]> {
    if (openKfId === undefined) return (await this.wecom((kf) => kf.accounts(corpId))).map((a) => a.openKfId);
    if (!OPENID_PATTERN.test(openKfId)) throw refused('invalid', 'open_kfid must be 1-64 of [A-Za-z0-9_-]');
    return [openKfId];
  }

  /** The customer's session with each of those accounts (kf/service_state/get, one call at a time). */
  private async wecomSessions(corpId: string, user: string, openKfId?: string): Promise<WeComSessionView[]> {
    const sessions: WeComSessionView[] = [];
    for (const id of await this.kfAccounts(corpId, openKfId)) {
      sessions.push({ openKfId: id, ...(await this.wecom((kf) => kf.serviceState(corpId, id, user))) });
    }
    return sessions;
  }

  /** The account named, or the only one configured. */
  account(appId?: string): AccountConfig {
    if (appId === undefined) {
      const [only, ...others] = this.accounts.values();
      if (only && others.length === 0) return only;
      throw refused('account', `give the account (--account / appId): ${this.list()}`);
    }
    const account = this.accounts.get(appId);
    if (!account) throw refused('account', `unknown account "${appId.slice(0, 64)}" (configured: ${this.list()})`);
    return account;
  }

  private list() {
    const ids = [...this.accounts.keys()].join(', ');
    return clip(ids, 200);
  }

  /** An Official Account, or the one-line refusal for a Mini Program or a WeCom corp (nobody is called). */
  official(appId?: string): AccountConfig {
    const account = this.account(appId);
    if (account.type === 'wecom-kf') throw refused('unsupported', WECOM_NO_SESSION_API);
    if (account.type !== 'officialaccount') throw refused('unsupported', NO_SESSION_API);
    return account;
  }

  /** True while the user is handed to a human on an account that uses handoff (the send API's 409). */
  async handedOff(appId: string, openid: string): Promise<boolean> {
    return this.handoffAccounts.has(appId) && (await this.handoffs.isOpen(appId, openid));
  }

  private check(fields: Parameters<typeof agentProblem>[0]) {
    const problem = agentProblem(fields);
    if (problem) throw refused('invalid', problem);
  }

  agents(appId?: string) {
    return this.client.kf.agents(this.official(appId).appId);
  }

  onlineAgents(appId?: string) {
    return this.client.kf.onlineAgents(this.official(appId).appId);
  }

  async addAgent(appId: string | undefined, agent: string, nickname: string) {
    const a = this.official(appId);
    this.check({ account: agent, nickname });
    await this.client.kf.addAgent(a.appId, agent, nickname);
    this.logger.info({ appId: a.appId, agent }, 'agent added');
  }

  async updateAgent(appId: string | undefined, agent: string, nickname: string) {
    const a = this.official(appId);
    this.check({ account: agent, nickname });
    await this.client.kf.updateAgent(a.appId, agent, nickname);
    this.logger.info({ appId: a.appId, agent }, 'agent updated');
  }

  async deleteAgent(appId: string | undefined, agent: string) {
    const a = this.official(appId);
    this.check({ account: agent });
    await this.client.kf.deleteAgent(a.appId, agent);
    this.logger.info({ appId: a.appId, agent }, 'agent deleted');
  }

  async agentAvatar(appId: string | undefined, agent: string, image: Buffer) {
    const a = this.official(appId);
    this.check({ account: agent, avatar: image });
    await this.client.kf.uploadAvatar(a.appId, agent, image);
    this.logger.info({ appId: a.appId, agent, bytes: image.length }, 'agent avatar uploaded');
  }

  async inviteAgent(appId: string | undefined, agent: string, wechatId: string) {
    const a = this.official(appId);
    this.check({ account: agent });
    if (!/^[A-Za-z0-9_-]{1,40}$/.test(wechatId)) throw refused('invalid', 'wechatId must be a WeChat ID');
    await this.client.kf.inviteAgent(a.appId, agent, wechatId);
    this.logger.info({ appId: a.appId, agent }, 'agent invited');
  }

  private needsHandoff(account: AccountConfig) {
    if (!this.handoffAccounts.has(account.appId)) {
      throw refused(
        'handoff_off',
        `account ${account.appId} does not use handoff (handoff: off, or auto without a transfer rule or handler): set handoff: on`,
      );
    }
  }

  /**
   * Hands the user to a human: on an Official Account, WeChat's session with `agent` first (kfsession/create); on
   * a WeCom corp, WeCom's session to the servicer or the queue (kf/service_state/trans); then wx-kf's handoff. On
   * a Mini Program, wx-kf's handoff only.
   */
  async openSession(
    appId: string | undefined,
    openid: string,
    agent?: string,
    openKfId?: string,
  ): Promise<SessionView> {
    const account = this.account(appId);
    if (account.type === 'officialaccount') {
      if (!agent) throw refused('agent', 'an Official Account session needs the agent (--agent / agent)');
      this.check({ account: agent });
      await this.client.kf.createSession(account.appId, agent, openid);
    } else if (account.type === 'wecom-kf') {
      this.needsHandoff(account);
      await this.moveWeComSession(account.appId, openid, agent, openKfId);
    } else {
      this.needsHandoff(account);
    }
    if (this.handoffAccounts.has(account.appId)) {
      await this.handoffs.open(account.appId, openid, { reason: 'operator', agent, force: true });
    }
    return this.showSession(account.appId, openid, openKfId);
  }

  /**
   * WeCom: the customer's session to the servicer named (state 3), else to the queue (2), on the account given or
   * the corp's only one. WeCom refuses a move it does not allow (95016: e.g. from an ended session).
   */
  private async moveWeComSession(corpId: string, user: string, servicer?: string, openKfId?: string) {
    if (servicer !== undefined && !OPENID_PATTERN.test(servicer)) {
      throw refused('invalid', 'agent must be a WeCom servicer userid (1-64 of [A-Za-z0-9_-])');
    }
    const kfs = await this.kfAccounts(corpId, openKfId);
    const [only] = kfs;
    if (!only || kfs.length > 1) {
      throw refused(
        'open_kfid',
        `the corp has ${kfs.length} customer-service accounts: name the one (--kf / open_kfid)`,
      );
    }
    const state = servicer ? SERVICE_STATE.human : SERVICE_STATE.queued;
    await this.wecom((kf) => kf.transState(corpId, { openKfId: only, touser: user, state, servicer }));
  }

  /**
   * Gives the user back to the bot: WeChat's session closed (Official Accounts) or WeCom's ended where queued or
   * with a person (the bot answers the customer's next message), then wx-kf's handoff.
   */
  async closeSession(
    appId: string | undefined,
    openid: string,
    agent?: string,
    openKfId?: string,
  ): Promise<SessionView> {
    const account = this.account(appId);
    if (account.type === 'officialaccount') {
      const holder = agent ?? (await this.client.kf.session(account.appId, openid)).agent;
      if (holder) await this.client.kf.closeSession(account.appId, holder, openid);
    } else if (account.type === 'wecom-kf') {
      this.needsHandoff(account);
      for (const s of await this.wecomSessions(account.appId, openid, openKfId)) {
        if (s.state !== SERVICE_STATE.queued && s.state !== SERVICE_STATE.human) continue;
        const to = { openKfId: s.openKfId, touser: openid, state: SERVICE_STATE.ended };
        await this.wecom((kf) => kf.transState(account.appId, to));
      }
    } else {
      this.needsHandoff(account);
    }
    await this.handoffs.close(account.appId, openid, { reason: 'operator', force: true });
    return this.showSession(account.appId, openid, openKfId);
  }

  async showSession(appId: string | undefined, openid: string, openKfId?: string): Promise<SessionView> {
    const account = this.account(appId);
    const state = await this.handoffs.get(account.appId, openid);
    const view: SessionView = { appId: account.appId, openid, handoff: state?.open ? handoffView(state) : null };
    if (account.type === 'officialaccount') view.wechat = await this.client.kf.session(account.appId, openid);
    if (account.type === 'wecom-kf') view.wecom = await this.wecomSessions(account.appId, openid, openKfId);
    return view;
  }

  waiting(appId?: string) {
    return this.client.kf.waiting(this.official(appId).appId);
  }

  agentSessions(appId: string | undefined, agent: string) {
    const a = this.official(appId);
    this.check({ account: agent });
    return this.client.kf.agentSessions(a.appId, agent);
  }

  /**
   * A Mini Program / Mini Game login code → the user's openid (and unionid). The session_key is returned only
   * when asked for, and never logged.
   */
  async code2session(
    appId: string,
    code: string,
    includeSessionKey = false,
  ): Promise<{ openid: string; unionid?: string; session_key?: string }> {
    const account = this.account(appId);
    if (account.type !== 'miniprogram') {
      throw refused('unsupported', 'code2session is for Mini Programs and Mini Games; nothing was sent to WeChat');
    }
    const answer = await code2session(this.client.http, account, code);
    this.logger.info({ appId, sessionKeyReturned: includeSessionKey }, 'code2session: openid issued');
    return {
      openid: answer.openid,
      ...(answer.unionid ? { unionid: answer.unionid } : {}),
      ...(includeSessionKey ? { session_key: answer.session_key } : {}),
    };
  }

  async close(): Promise<void> {
    await this.wecomApi?.close();
    if (!this.api) return;
    this.api.tokens.close();
    await this.api.http.close();
  }
}
