import type { WeChatClient } from '../../api/client.js';
import { type ReplyItem, toCustomMessage } from '../../wechat/custom-message.js';
import type { Channel, Recipient } from '../channel.js';

/** WeChat's push channel (Mini Programs, Mini Games, Official Accounts): custom/send and typing. */
export class WeChatPushChannel implements Channel {
  readonly kind = 'push';

  constructor(readonly client: WeChatClient) {}

  send(appId: string, to: Recipient, item: ReplyItem): Promise<void> {
    return this.client.sendCustomMessage(appId, toCustomMessage(to.touser, item));
  }

  typing(appId: string, touser: string, on: boolean): Promise<void> {
    return this.client.setTyping(appId, touser, on);
  }
}
