import { z } from 'zod';
import type { WeChatClient } from './client.js';
import { FormData, type WeChatHttp } from './http.js';

/** An Official Account agent as `getkflist` lists it. */
export interface KfAgent {
  kf_account: string;
  kf_nick: string;
  kf_id: string;
  kf_headimgurl: string;
  /** The WeChat ID the agent is bound to, once the invitation was accepted. */
  kf_wx?: string;
  invite_wx?: string;
  invite_expire_time?: number;
  invite_status?: string;
}

/** An agent as `getonlinekflist` lists it: status 1 = web client online; accepted_case = sessions held. */
export interface KfOnlineAgent {
  kf_account: string;
  status: number;
  kf_id: string;
  accepted_case: number;
}

// WeChat's answers as documented (fields it adds are kept).
const agentList = z.looseObject({
  kf_list: z
    .array(
      z.looseObject({
        kf_account: z.string(),
        kf_nick: z.string(),
        kf_id: z.string(),
        kf_headimgurl: z.string(),
        kf_wx: z.string().optional(),
        invite_wx: z.string().optional(),
        invite_expire_time: z.number().optional(),
        invite_status: z.string().optional(),
      }),
    )
    .optional(),
});
const onlineList = z.looseObject({
  kf_online_list: z
    .array(z.looseObject({ kf_account: z.string(), status: z.number(), kf_id: z.string(), accepted_case: z.number() }))
    .optional(),
});
const sessionAnswer = z.looseObject({ kf_account: z.string().optional(), createtime: z.number().optional() });
const sessionList = z.looseObject({
  sessionlist: z.array(z.looseObject({ openid: z.string(), createtime: z.number() })).optional(),
});
const waitList = z.looseObject({
  count: z.number().optional(),
  waitcaselist: z.array(z.looseObject({ openid: z.string(), latest_time: z.number() })).optional(),
});
const code2sessionAnswer = z.looseObject({
  openid: z.string(),
  unionid: z.string().optional(),
  session_key: z.string(),
});

/** `prefix@account`: a prefix of at most 10 letters, digits or `_`, then the account's WeChat ID (≤ 30). */
export const AGENT_ACCOUNT = /^[A-Za-z0-9_]{1,10}@[A-Za-z0-9_-]{1,30}$/;
/** WeChat's limit for an agent's nickname. */
export const MAX_NICKNAME = 16;
/** Largest avatar accepted for upload (WeChat asks for a JPEG, 640×640 recommended). */
const MAX_AVATAR_BYTES = 5 * 1024 * 1024;

/** Why an agent account, nickname or avatar would be refused, before WeChat is asked; undefined when fine. */
export function agentProblem(fields: { account?: string; nickname?: string; avatar?: Buffer }): string | undefined {
  if (fields.account !== undefined && !AGENT_ACCOUNT.test(fields.account)) {
    return 'agent must be prefix@account: a prefix of 1 to 10 letters, digits or _, then the account’s WeChat ID';
  }
  if (
    fields.nickname !== undefined &&
    ([...fields.nickname].length === 0 || [...fields.nickname].length > MAX_NICKNAME)
  ) {
    return `nickname must be 1 to ${MAX_NICKNAME} characters`;
  }
  if (fields.avatar !== undefined) {
    const jpeg = fields.avatar.length > 3 && fields.avatar[0] === 0xff && fields.avatar[1] === 0xd8;
    if (!jpeg) return 'avatar must be a JPEG image';
    if (fields.avatar.length > MAX_AVATAR_BYTES) return `avatar must be at most ${MAX_AVATAR_BYTES / 1024 / 1024} MB`;
  }
  return undefined;
}

/**
 * Official Account agents (`customservice/kfaccount/*`, `getkflist`, `getonlinekflist`) and sessions
 * (`customservice/kfsession/*`), with the cluster's shared token and one retry after a stale one. WeChat's
 * refusals throw WeChatApiError (errcode, errmsg), like every other call.
 */
export class KfClient {
  constructor(
    private readonly wechat: WeChatClient,
    private readonly http: WeChatHttp,
  ) {}

  /** A GET with the account's token, its answer read with `answer`. */
  private get<T>(appId: string, path: string, query: Record<string, string>, answer: z.ZodType<T>): Promise<T> {
    return this.wechat.withToken(appId, (token) =>
      this.http.call(path, { query: { access_token: token, ...query } }, answer),
    );
  }

  private post(appId: string, path: string, json: unknown): Promise<unknown> {
    return this.wechat.withToken(appId, (token) => this.http.call(path, { query: { access_token: token }, json }));
  }

  async agents(appId: string): Promise<KfAgent[]> {
    return (await this.get(appId, '/cgi-bin/customservice/getkflist', {}, agentList)).kf_list ?? [];
  }

  async onlineAgents(appId: string): Promise<KfOnlineAgent[]> {
    return (await this.get(appId, '/cgi-bin/customservice/getonlinekflist', {}, onlineList)).kf_online_list ?? [];
  }

  async addAgent(appId: string, account: string, nickname: string): Promise<void> {
    await this.post(appId, '/customservice/kfaccount/add', { kf_account: account, nickname });
  }

  async updateAgent(appId: string, account: string, nickname: string): Promise<void> {
    await this.post(appId, '/customservice/kfaccount/update', { kf_account: account, nickname });
  }

  /** customservice/kfaccount/del is a GET. */
  async deleteAgent(appId: string, account: string): Promise<void> {
    await this.wechat.withToken(appId, (token) =>
      this.http.call('/customservice/kfaccount/del', { query: { access_token: token, kf_account: account } }),
    );
  }

  /** Binds the agent to a person's WeChat ID: they accept the invitation in WeChat. */
  async inviteAgent(appId: string, account: string, wechatId: string): Promise<void> {
    await this.post(appId, '/customservice/kfaccount/inviteworker', { kf_account: account, invite_wx: wechatId });
  }

  async uploadAvatar(appId: string, account: string, image: Buffer, filename = 'avatar.jpg'): Promise<void> {
    await this.wechat.withToken(appId, (token) => {
      const form = new FormData();
      form.append('media', new Blob([image], { type: 'image/jpeg' }), filename);
      return this.http.call('/customservice/kfaccount/uploadheadimg', {
        query: { access_token: token, kf_account: account },
        form,
      });
    });
  }

  /** Gives the user's session to an agent (who must be online); WeChat then pushes kf_create_session. */
  async createSession(appId: string, agent: string, openid: string): Promise<void> {
    await this.post(appId, '/customservice/kfsession/create', { kf_account: agent, openid });
  }

  async closeSession(appId: string, agent: string, openid: string): Promise<void> {
    await this.post(appId, '/customservice/kfsession/close', { kf_account: agent, openid });
  }

  /** The agent holding the user's session, if any (WeChat answers an empty kf_account otherwise). */
  async session(appId: string, openid: string): Promise<{ agent?: string; createdAt?: number }> {
    const s = await this.get(appId, '/customservice/kfsession/getsession', { openid }, sessionAnswer);
    return s.kf_account ? { agent: s.kf_account, createdAt: s.createtime } : {};
  }

  async agentSessions(appId: string, agent: string): Promise<{ openid: string; createtime: number }[]> {
    const answer = await this.get(appId, '/customservice/kfsession/getsessionlist', { kf_account: agent }, sessionList);
    return answer.sessionlist ?? [];
  }

  /** Users waiting for an agent (WeChat lists at most 100). */
  async waiting(appId: string): Promise<{ count: number; users: { openid: string; latest_time: number }[] }> {
    const answer = await this.get(appId, '/customservice/kfsession/getwaitcase', {}, waitList);
    return { count: answer.count ?? 0, users: answer.waitcaselist ?? [] };
  }
}

/** What `sns/jscode2session` answers. `session_key` is a secret: never log it, never return it unasked. */
export interface Code2Session {
  openid: string;
  unionid?: string;
  session_key: string;
}

/**
 * Exchanges a Mini Program / Mini Game login `code` for the user's openid (`sns/jscode2session`; signed with
 * the AppSecret, not the access_token). 40029 (bad code), 45011 (rate), 40226 (risky user) throw WeChatApiError.
 */
export async function code2session(
  http: WeChatHttp,
  account: { appId: string; appSecret: string },
  code: string,
): Promise<Code2Session> {
  const query = { appid: account.appId, secret: account.appSecret, js_code: code, grant_type: 'authorization_code' };
  return http.call('/sns/jscode2session', { query }, code2sessionAnswer);
}
