import type { AccountConfig } from '../config/types.js';
import type { Channel } from './channel.js';

export type { Channel, Recipient } from './channel.js';
export { WeChatPushChannel } from './wechat/index.js';

/** Each account's channel: WeCom's pull channel for `wecom-kf` accounts, WeChat's push channel for the others. */
export class Channels {
  private readonly byAccount = new Map<string, Channel>();

  constructor(accounts: readonly AccountConfig[], push: Channel, pull?: Channel) {
    for (const a of accounts) {
      const channel = a.type === 'wecom-kf' ? pull : push;
      if (!channel) throw new Error(`account ${a.appId}: no ${a.type} channel`);
      this.byAccount.set(a.appId, channel);
    }
  }

  /** The account's channel; throws for an account not configured (jobs are checked against the accounts first). */
  of(appId: string): Channel {
    const channel = this.byAccount.get(appId);
    if (!channel) throw new Error(`no account ${appId}`);
    return channel;
  }
}
