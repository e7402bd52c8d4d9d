import type { CatalogueEntry } from './catalogue-entry.js';
import { KF_EVENTS, MENU_EVENTS, USER_EVENTS } from './catalogue-events.js';
import { MESSAGE_ENTRIES } from './catalogue-messages.js';
import { JOB_EVENTS, SUBSCRIPTION_EVENTS } from './catalogue-notices.js';

export type { CatalogueEntry } from './catalogue-entry.js';

/**
 * Every message and event type that WeChat documents for Mini Programs, Mini Games and Official Accounts,
 * written from the documentation pages (接收普通消息, 接收事件推送, 自定义菜单事件, 模板消息, 群发, 发布能力,
 * 订阅通知, 多客服, 小程序客服消息) in the indented XML the pages show, with values of the documented kind.
 * Placeholders: `{{from}}` (the user's OpenID), `{{time}}` (CreateTime) and `{{id}}` (a MsgId / MsgID).
 */
export const PUSH_CATALOGUE: readonly CatalogueEntry[] = [
  ...MESSAGE_ENTRIES,
  ...USER_EVENTS,
  ...MENU_EVENTS,
  ...JOB_EVENTS,
  ...SUBSCRIPTION_EVENTS,
  ...KF_EVENTS,
];

/** The entry's XML for one user, time and id. */
export function catalogueXml(entry: CatalogueEntry, values: { from: string; time: number; id: string }): string {
  return entry.xml
    .replaceAll('{{from}}', values.from)
    .replaceAll('{{time}}', String(values.time))
    .replaceAll('{{id}}', values.id);
}
