import type { WeChatClient } from '../api/client.js';
import type { ReplyItem } from '../wechat/custom-message.js';

/** Whom one reply goes to, and what the channel needs to send it exactly once. */
export interface Recipient {
  touser: string;
  /** The message (or send API call) the reply belongs to, and the reply's place in it: its send's identity. */
  msgKey: string;
  index: number;
  /** WeCom: the customer-service account the customer wrote to. */
  openKfId?: string | undefined;
  /** WeCom: an event's code (the welcome of `enter_session`) the first reply goes out with. */
  code?: string | undefined;
}

/**
 * What differs between the ways a user reaches wx-kf; the conversation pipeline (rules, handler, model,
 * order, window ledger, timeline, handoff) is the same for all. Two implementations:
 * - `push` (channel/wechat): WeChat pushes each message to the ingress; replies go through custom/send.
 * - `pull` (channel/wecom): WeCom sends a notice, a worker pulls the messages; replies go through kf/send_msg.
 * How a push or notice is verified sits in the ingress (routes/wechat.ts, routes/wecom.ts); what a message
 * grants in the window in conversation/rules.ts (`windowGrant`, by account type); what an errcode means in the
 * channel's errcode table, which its client's errors carry (`WeChatApiError.rule`).
 */
export interface Channel {
  readonly kind: 'push' | 'pull';
  /** The channel's API client: its token, media upload and download. */
  readonly client: WeChatClient;
  /** Sends one reply; throws WeChatApiError / TransportError as the API answered. */
  send(appId: string, to: Recipient, item: ReplyItem): Promise<void>;
  /** Shows or hides "typing…" (best effort), where the channel has it. */
  typing?(appId: string, touser: string, on: boolean): Promise<void>;
  /** Moves the user to a person (named, or the queue), where the channel owns the session (WeCom). */
  handOver?(appId: string, to: Recipient, agent?: string): Promise<void>;
  /** Whether a person (or the queue) holds the user's session now, and who; where the channel can tell. */
  sessionHolder?(appId: string, to: Recipient): Promise<{ held: boolean; agent?: string | undefined }>;
}
