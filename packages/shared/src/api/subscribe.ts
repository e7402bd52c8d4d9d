import { z } from 'zod';
import type { NotificationBody, NotificationKind } from '../notify/body.js';
import { templateKeys } from '../notify/data-kinds.js';
import type { WeChatClient } from './client.js';
import type { WeChatHttp } from './http.js';

/** The WeChat call of each kind of notification (docs/wechat-protocol.md §14.1). */
export const NOTIFICATION_PATHS: Readonly<Record<NotificationKind, string>> = {
  subscribe: '/cgi-bin/message/subscribe/send',
  bizsend: '/cgi-bin/message/subscribe/bizsend',
  template: '/cgi-bin/message/template/send',
};

/** One of the account's subscribe templates, as `wxaapi/newtmpl/gettemplate` lists it, with its `data` keys. */
export interface SubscribeTemplate {
  id: string;
  title: string;
  /** 2: one-time (one grant per accept); 3: long-term. */
  type: number;
  keys: string[];
}

const templateList = z.looseObject({
  data: z
    .array(
      z.looseObject({
        priTmplId: z.string(),
        title: z.string().optional(),
        content: z.string(),
        type: z.number().optional(),
      }),
    )
    .optional(),
});
const sendAnswer = z.looseObject({ msgid: z.union([z.string(), z.number()]).optional() });

/**
 * Notifications outside the customer-service window, with the cluster's shared token (one retry after a stale
 * one): subscribe messages, subscribe notifications and template messages, and the account's subscribe templates.
 * WeChat's refusals throw WeChatApiError (43101 no grant, 47003 a bad field, 41030 a bad page, …).
 */
export class NotifyClient {
  constructor(
    private readonly http: WeChatHttp,
    private readonly client: WeChatClient,
  ) {}

  /** Sends a notification of `kind`; resolves WeChat's `msgid` when it gives one (template messages). */
  async send(appId: string, kind: NotificationKind, body: NotificationBody): Promise<{ msgid?: string }> {
    const answer = await this.client.withToken(appId, (token) =>
      this.http.call(NOTIFICATION_PATHS[kind], { query: { access_token: token }, json: body }, sendAnswer),
    );
    return answer.msgid === undefined ? {} : { msgid: String(answer.msgid) };
  }

  /** The account's subscribe templates (`wxaapi/newtmpl/gettemplate`), each with the keys its content names. */
  async templates(appId: string): Promise<SubscribeTemplate[]> {
    const answer = await this.client.withToken(appId, (token) =>
      this.http.call('/wxaapi/newtmpl/gettemplate', { query: { access_token: token } }, templateList),
    );
    return (answer.data ?? []).map((t) => ({
      id: t.priTmplId,
      title: t.title ?? '',
      type: t.type ?? 2,
      keys: templateKeys(t.content),
    }));
  }
}
