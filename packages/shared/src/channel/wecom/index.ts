import { createHash } from 'node:crypto';
import type { WeChatClient } from '../../api/client.js';
import type { ReplyItem } from '../../wechat/custom-message.js';
import type { Channel, Recipient } from '../channel.js';
import { BOT_MAY_SEND, SERVICE_STATE, type WeComClient } from './client.js';

export * from './api.js';
export * from './client.js';
export * from './errcodes.js';
export * from './message.js';
export * from './pull.js';
export * from './pull-state.js';
export * from './window.js';

/**
 * A reply's kf/send_msg `msgid` (32 of [0-9a-f]): the same for every try of one reply of one message, so a send
 * that WeCom accepted before a timeout is never delivered twice when it is tried again.
 */
export function replyMsgId(msgKey: string, index: number): string {
  return createHash('sha256').update(`${msgKey}#${index}`).digest('hex').slice(0, 32);
}

/** WeCom's pull channel (微信客服): kf/send_msg, the welcome through send_msg_on_event, the session's state. */
export class WeComPullChannel implements Channel {
  readonly kind = 'pull';

  constructor(
    readonly client: WeChatClient,
    readonly kf: WeComClient,
  ) {}

  send(corpId: string, to: Recipient, item: ReplyItem): Promise<void> {
    const msgid = replyMsgId(to.msgKey, to.index);
    if (to.code && to.index === 0) return this.kf.sendMsgOnEvent(corpId, to.code, msgid, item);
    return this.kf.sendMsg(corpId, { openKfId: this.kfOf(to), touser: to.touser, msgid }, item);
  }

  /** service_state/trans: to the named person, else to the queue (待接入池). */
  handOver(corpId: string, to: Recipient, agent?: string): Promise<void> {
    const state = agent ? SERVICE_STATE.human : SERVICE_STATE.queued;
    return this.kf.transState(corpId, { openKfId: this.kfOf(to), touser: to.touser, state, servicer: agent });
  }

  async sessionHolder(corpId: string, to: Recipient) {
    const { state, servicer } = await this.kf.serviceState(corpId, this.kfOf(to), to.touser);
    return { held: !BOT_MAY_SEND.has(state) && state !== SERVICE_STATE.ended, agent: servicer };
  }

  private kfOf(to: Recipient): string {
    if (!to.openKfId) throw new TypeError('a WeCom reply needs the open_kfid the customer wrote to');
    return to.openKfId;
  }
}
