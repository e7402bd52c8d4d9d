import { WeComCore } from './wecom-core.js';
import type { WeComAgentItem, WeComCustomerItem, WeComEventItem } from './wecom-log.js';
import { type NotifyOptions, type NotifyResult, notify, verifyWeComUrl } from './wecom-push.js';
import type { ServiceState } from './wecom-sessions.js';

export type { SimCorp, WeComOptions, WeComSent, WeComTransCall } from './wecom-core.js';

/** One customer of one kf account of one corp. */
export interface WeComTarget {
  corpId: string;
  openKfId: string;
  externalUserId: string;
}

/** A customer's message: text (default 'hello'), or an image when `mediaId` is given; `sendTime` in unix s. */
export interface CustomerMessageInput extends WeComTarget {
  content?: string;
  mediaId?: string;
  sendTime?: number;
}

/** A backlog: `n` messages spread round-robin over the customers (content `message <i>` by default). */
export interface BacklogInput {
  corpId: string;
  openKfId: string;
  externalUserIds?: string[];
  content?: (index: number) => string;
  sendTime?: number;
}

const DAY_SECONDS = 24 * 3600;

/**
 * The WeCom fake's state plus what tests script on the customers' and servicers' side: messages and events
 * appended to the logs sync_msg reads (the callback notice that tells the service to pull is wecom-push.ts).
 */
export class WeComState extends WeComCore {
  /** A customer writes to the kf account: a new session unless one is open, and a fresh 48 h send window. */
  customerMessage(input: CustomerMessageInput): WeComCustomerItem {
    const { corpId, openKfId, externalUserId, mediaId } = input;
    const sendTime = input.sendTime ?? this.nowSeconds();
    const item: WeComCustomerItem = {
      msgid: this.log.nextMsgId(),
      open_kfid: openKfId,
      external_userid: externalUserId,
      send_time: sendTime,
      origin: 3,
      ...(mediaId
        ? { msgtype: 'image', image: { media_id: mediaId } }
        : { msgtype: 'text', text: { content: input.content ?? 'hello' } }),
    };
    this.log.append(corpId, openKfId, item);
    this.sessions.customerWrote(corpId, openKfId, externalUserId, sendTime * 1000);
    return item;
  }

  /** `n` customer messages at once (a backlog, e.g. 2 500 over several customers). */
  customerMessages(n: number, input: BacklogInput): WeComCustomerItem[] {
    const users = input.externalUserIds?.length ? input.externalUserIds : ['wm_sim_customer_0001'];
    return Array.from({ length: n }, (_, i) =>
      this.customerMessage({
        corpId: input.corpId,
        openKfId: input.openKfId,
        externalUserId: users[i % users.length] ?? 'wm_sim_customer_0001',
        content: input.content?.(i) ?? `message ${i + 1}`,
        ...(input.sendTime === undefined ? {} : { sendTime: input.sendTime }),
      }),
    );
  }

  /** Customer messages dated `daysAgo` days back (one per second from then): the 3-day cutoff, first pulls. */
  history(input: WeComTarget & { daysAgo: number; count?: number; content?: string }): WeComCustomerItem[] {
    const start = this.nowSeconds() - Math.round(input.daysAgo * DAY_SECONDS);
    return Array.from({ length: input.count ?? 1 }, (_, i) =>
      this.customerMessage({ ...input, content: input.content ?? `history ${i + 1}`, sendTime: start + i }),
    );
  }

  /** The customer opens the chat: an enter_session event with a welcome_code (20 s, one use). */
  enterSession(input: WeComTarget & { scene?: string; sceneParam?: string }): {
    item: WeComEventItem;
    welcomeCode: string;
  } {
    const welcomeCode = this.issueCode(input.corpId, input.openKfId, input.externalUserId);
    const item = this.event(input, {
      event_type: 'enter_session',
      scene: input.scene ?? '',
      ...(input.sceneParam === undefined ? {} : { scene_param: input.sceneParam }),
      welcome_code: welcomeCode,
    });
    return { item, welcomeCode };
  }

  /** A servicer writes from the WeCom client (origin 5): pulled like the rest, unlike API sends. */
  agentMessage(input: WeComTarget & { content: string; servicer?: string }): WeComAgentItem {
    const item: WeComAgentItem = {
      msgid: this.log.nextMsgId(),
      open_kfid: input.openKfId,
      external_userid: input.externalUserId,
      send_time: this.nowSeconds(),
      origin: 5,
      servicer_userid: input.servicer ?? this.servicersOf(input.corpId)[0] ?? 'agent1',
      msgtype: 'text',
      text: { content: input.content },
    };
    this.log.append(input.corpId, input.openKfId, item);
    return item;
  }

  /** A servicer takes the session (state 3): change_type 1 接入, 2 转接 from another, 4 重新接入 an ended one. */
  agentTakes(corpId: string, openKfId: string, externalUserId: string, servicer?: string): WeComEventItem {
    const to = servicer ?? this.servicersOf(corpId)[0] ?? 'agent1';
    const before = this.sessions.set(corpId, openKfId, externalUserId, 3, to);
    const changeType = before.state === 3 ? 2 : before.state === 4 ? 4 : 1;
    return this.statusChange({ corpId, openKfId, externalUserId }, changeType, before.servicer, to);
  }

  /** The servicer ends the session (state 4, change_type 3). */
  agentEnds(corpId: string, openKfId: string, externalUserId: string): WeComEventItem {
    const before = this.sessions.set(corpId, openKfId, externalUserId, 4, '');
    return this.statusChange({ corpId, openKfId, externalUserId }, 3, before.servicer, '');
  }

  /** WeCom could not deliver a message the API sent: a msg_send_fail event (fail_type 0 = unknown reason). */
  sendFailed(corpId: string, openKfId: string, externalUserId: string, failMsgid: string, failType = 0) {
    return this.event(
      { corpId, openKfId, externalUserId },
      {
        event_type: 'msg_send_fail',
        fail_msgid: failMsgid,
        fail_type: failType,
      },
    );
  }

  /** The customer recalls one of their messages: a user_recall_msg event. */
  userRecalled(corpId: string, openKfId: string, externalUserId: string, recallMsgid: string): WeComEventItem {
    return this.event(
      { corpId, openKfId, externalUserId },
      { event_type: 'user_recall_msg', recall_msgid: recallMsgid },
    );
  }

  /** The session as service_state/get answers it. */
  state(
    corpId: string,
    openKfId: string,
    externalUserId: string,
  ): { service_state: ServiceState; servicer_userid: string } {
    const session = this.sessions.get(corpId, openKfId, externalUserId);
    return { service_state: session.state, servicer_userid: session.servicer };
  }

  /**
   * Sends the corp's encrypted kf_msg_or_event callback to the ingress (base URL) with a fresh sync Token
   * (`tokenAgeMs` old already, or the `token` given), `times` times; see wecom-push.ts.
   */
  notify(
    ingressUrl: string,
    corpId: string,
    openKfId: string,
    options: Partial<NotifyOptions> & { tokenAgeMs?: number } = {},
  ): Promise<NotifyResult> {
    const token = options.token ?? this.issueToken(corpId, options.tokenAgeMs);
    return notify(ingressUrl, this.corp(corpId), openKfId, { ...options, token });
  }

  /** Sends WeCom's URL verification GET for the corp to the ingress (base URL). */
  verifyUrl(ingressUrl: string, corpId: string, options: { tamper?: boolean } = {}) {
    return verifyWeComUrl(ingressUrl, this.corp(corpId), options);
  }

  /** The counters tests read, as plain JSON (the control route answers it). */
  stats() {
    return {
      tokenRequests: Object.fromEntries(this.tokenRequests),
      syncCalls: this.syncCalls,
      syncCallsByKf: Object.fromEntries(this.syncCallsByKf),
      syncsWithoutToken: this.syncsWithoutToken,
      maxConcurrentSyncs: Object.fromEntries(this.maxConcurrentSyncs),
      duplicateSends: this.duplicateSends,
      sent: this.sent.length,
      transCalls: this.transCalls.length,
    };
  }

  private corp(corpId: string) {
    const corp = this.corps.get(corpId);
    if (!corp) throw new Error(`the simulator has no WeCom corp ${corpId}`);
    return corp;
  }

  private statusChange(target: WeComTarget, changeType: number, from: string, to: string): WeComEventItem {
    return this.event(target, {
      event_type: 'session_status_change',
      change_type: changeType,
      ...(from ? { old_servicer_userid: from } : {}),
      ...(to ? { new_servicer_userid: to } : {}),
      msg_code: this.issueCode(target.corpId, target.openKfId, target.externalUserId),
    });
  }

  private event(target: WeComTarget, fields: { event_type: string } & Record<string, unknown>): WeComEventItem {
    const item: WeComEventItem = {
      msgid: this.log.nextMsgId(),
      send_time: this.nowSeconds(),
      origin: 4,
      msgtype: 'event',
      event: { ...fields, open_kfid: target.openKfId, external_userid: target.externalUserId },
    };
    this.log.append(target.corpId, target.openKfId, item);
    return item;
  }
}
