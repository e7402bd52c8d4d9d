import { z } from 'zod';
import type { WeChatClient } from '../../api/client.js';
import type { WeChatHttp } from '../../api/http.js';
import type { ReplyItem } from '../../wechat/custom-message.js';
import { type SyncPage, syncAnswer } from './message.js';

/** WeCom's customer-service session states (kf/service_state): who has the customer now. */
export const SERVICE_STATE = {
  /** 未处理: new, nobody yet. */
  new: 0,
  /** 由智能助手接待: the bot (the API) has it. */
  bot: 1,
  /** 待接入池排队中: queued for a person. */
  queued: 2,
  /** 由人工接待: a person has it. */
  human: 3,
  /** 已结束: ended. */
  ended: 4,
} as const;

/** States in which kf/send_msg is allowed (95018 otherwise). */
export const BOT_MAY_SEND: ReadonlySet<number> = new Set([SERVICE_STATE.new, SERVICE_STATE.bot]);

const stateAnswer = z.looseObject({
  service_state: z.number().int(),
  servicer_userid: z.string().max(64).optional(),
});
const accountList = z.looseObject({
  account_list: z.array(z.looseObject({ open_kfid: z.string(), name: z.string().optional() })).max(5000),
});
const sent = z.looseObject({ msgid: z.string().optional() });

/** A customer-service account of the corp (kf/account/list). */
export interface KfAccount {
  openKfId: string;
  name: string;
}

/** The 微信客服 API calls wx-kf makes, with the corp's shared token (a WeChatClient made on WeCom's API). */
export class WeComClient {
  constructor(
    private readonly http: WeChatHttp,
    private readonly tokens: Pick<WeChatClient, 'withToken'>,
  ) {}

  private post<T>(corpId: string, path: string, json: object, answer: z.ZodType<T>): Promise<T> {
    return this.tokens.withToken(corpId, (token) =>
      this.http.call(`/cgi-bin/kf/${path}`, { query: { access_token: token }, json }, answer),
    );
  }

  /** One page of kf/sync_msg for an open_kfid, from `cursor` ('' = the start of what WeCom keeps). */
  syncMsg(corpId: string, page: { openKfId: string; cursor: string; token?: string | undefined; limit: number }) {
    const json = {
      open_kfid: page.openKfId,
      limit: page.limit,
      ...(page.cursor ? { cursor: page.cursor } : {}),
      ...(page.token ? { token: page.token } : {}),
    };
    return this.post<SyncPage>(corpId, 'sync_msg', json, syncAnswer);
  }

  /** kf/send_msg: one reply to a customer, with its own `msgid` (the same msgid never delivers twice). */
  async sendMsg(corpId: string, to: { openKfId: string; touser: string; msgid: string }, item: ReplyItem) {
    const json = { touser: to.touser, open_kfid: to.openKfId, msgid: to.msgid, ...item };
    await this.post(corpId, 'send_msg', json, sent);
  }

  /** kf/send_msg_on_event: the one message an event's code allows (a welcome within 20 s of enter_session). */
  async sendMsgOnEvent(corpId: string, code: string, msgid: string, item: ReplyItem) {
    await this.post(corpId, 'send_msg_on_event', { code, msgid, ...item }, sent);
  }

  /** kf/service_state/get: the session's state and the person who has it, if any. */
  async serviceState(corpId: string, openKfId: string, externalUserId: string) {
    const a = await this.post(
      corpId,
      'service_state/get',
      { open_kfid: openKfId, external_userid: externalUserId },
      stateAnswer,
    );
    return { state: a.service_state, servicer: a.servicer_userid || undefined };
  }

  /** kf/service_state/trans: moves the session (to the queue, to a person with `servicer`, to the bot, or ends it). */
  async transState(corpId: string, to: { openKfId: string; touser: string; state: number; servicer?: string }) {
    await this.post(
      corpId,
      'service_state/trans',
      {
        open_kfid: to.openKfId,
        external_userid: to.touser,
        service_state: to.state,
        ...(to.servicer ? { servicer_userid: to.servicer } : {}),
      },
      z.looseObject({}),
    );
  }

  /** kf/account/list: the corp's customer-service accounts (up to 100 per page, every page). */
  async accounts(corpId: string): Promise<KfAccount[]> {
    const all: KfAccount[] = [];
    for (let offset = 0; offset < 5000; offset += 100) {
      const page = await this.post(corpId, 'account/list', { offset, limit: 100 }, accountList);
      all.push(...page.account_list.map((a) => ({ openKfId: a.open_kfid, name: a.name ?? '' })));
      if (page.account_list.length < 100) break;
    }
    return all;
  }
}
