import type { NotificationKind } from '@wx-kf/shared/notify';
import { grantChanges, templateKeys } from '@wx-kf/shared/notify';

/** A template the simulated accounts have: `type` 2 is one-time (one send per accept), 3 long-term. */
export interface SimTemplate {
  id: string;
  title: string;
  content: string;
  type: 2 | 3;
}

/** Every account's subscribe templates (`wxaapi/newtmpl/gettemplate`; subscribe/send and bizsend use them). */
export const SIM_SUBSCRIBE_TEMPLATES: readonly SimTemplate[] = [
  {
    id: 'SIM_TPL_ORDER_SHIPPED',
    title: '订单发货通知',
    content: '订单号:{{character_string1.DATA}}\n商品:{{thing2.DATA}}\n发货时间:{{date3.DATA}}\n',
    type: 2,
  },
  { id: 'SIM_TPL_REMINDER', title: '待办提醒', content: '事项:{{thing1.DATA}}\n状态:{{phrase2.DATA}}\n', type: 2 },
  { id: 'SIM_TPL_PROGRESS', title: '服务进度提醒', content: '进度:{{thing1.DATA}}\n', type: 3 },
];

/** Every Official Account's template-message templates (template/send needs no grant). */
export const SIM_MESSAGE_TEMPLATES: readonly SimTemplate[] = [
  {
    id: 'SIM_OA_TPL_ORDER',
    title: '订单状态通知',
    content: '{{first.DATA}}\n订单:{{character_string1.DATA}}\n状态:{{thing2.DATA}}\n{{remark.DATA}}',
    type: 2,
  },
];

/** One notification WeChat accepted, as tests read it. */
export interface SentNotification {
  appId: string;
  touser: string;
  kind: NotificationKind;
  templateId: string;
  body: Record<string, unknown>;
  at: number;
}

/** One call to a notification route and WeChat's answer (0 when accepted). */
export interface NotificationCall {
  appId: string;
  touser: string;
  kind: NotificationKind;
  templateId: string;
  errcode: number;
}

/**
 * WeChat's side of subscribe messages: each user's grants per template, learned from the pop-up events pushed
 * to wx-kf (`observe`, or `POST /__sim/subscriptions`, as `pnpm sim push --subscribe-popup` does), and what was
 * sent. A one-time template allows one send per accept; a long-term one any number while accepted.
 */
export class SubscribeState {
  readonly sent: SentNotification[] = [];
  readonly calls: NotificationCall[] = [];
  private readonly grants = new Map<string, number>(); // `${appId}:${openid}:${template}`

  reset(): void {
    this.sent.length = 0;
    this.calls.length = 0;
    this.grants.clear();
  }

  /** The template `id` for a kind of notification, or undefined when the accounts have none such. */
  template(kind: NotificationKind, id: unknown): (SimTemplate & { keys: string[] }) | undefined {
    const list = kind === 'template' ? SIM_MESSAGE_TEMPLATES : SIM_SUBSCRIBE_TEMPLATES;
    const found = list.find((t) => t.id === id);
    return found && { ...found, keys: templateKeys(found.content) };
  }

  /** A user's choice for a template: `accept` / `acceptWithAudio` add a grant, `reject` / `ban` clear them. */
  choose(appId: string, openid: string, templateId: string, status: string): void {
    const key = `${appId}:${openid}:${templateId}`;
    if (status === 'accept' || status === 'acceptWithAudio') this.grants.set(key, (this.grants.get(key) ?? 0) + 1);
    else if (status === 'reject' || status === 'ban') this.grants.delete(key);
  }

  /** A pushed event as WeChat would have recorded the user's choice (pop-up or settings change). */
  observe(appId: string, message: Record<string, unknown>): void {
    const openid = message.FromUserName;
    if (typeof openid !== 'string') return;
    for (const { templateId, change } of grantChanges(message)) {
      this.choose(appId, openid, templateId, change === 'add' ? 'accept' : 'reject');
    }
  }

  /** The user's grants left, by template. */
  grantsOf(appId: string, openid: string): Record<string, number> {
    const prefix = `${appId}:${openid}:`;
    const out: Record<string, number> = {};
    for (const [key, n] of this.grants) if (key.startsWith(prefix)) out[key.slice(prefix.length)] = n;
    return out;
  }

  /** Uses a grant for a send: true when the user had one (a long-term template keeps it). */
  use(appId: string, openid: string, template: SimTemplate): boolean {
    const key = `${appId}:${openid}:${template.id}`;
    const n = this.grants.get(key) ?? 0;
    if (n <= 0) return false;
    if (template.type === 2) this.grants.set(key, n - 1);
    return true;
  }
}
