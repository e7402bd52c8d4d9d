// No imports: the queue CLI reads stored results with this, and the worker writes them.

/**
 * How an inbound job ended: its return value, as the worker writes it and `pnpm queues show` reads it back. A job
 * that fails has none (its failed reason says why).
 * - `replied`: every reply was accepted by WeChat.
 * - `requeued`: the replies still owed moved to the outbound job `outboundJobId` (`<id>-r`), which waits or retries.
 * - `none`: nothing to send (no rule matched, or the handler chose no reply).
 * - `transferred`: answered with transfer_customer_service at the ingress; the 客服 tool has the message.
 * - `handoff`: the user is with a human agent (or the push was the agents' kf event): the bot sends nothing.
 * - `history`: WeCom: an old message a first pull found; in the timeline, not answered.
 * - `pulled`: WeCom: a pull notice; this job pulled `pages` pages of `messages` messages and stored them as jobs.
 * - `joined`: WeCom: a pull notice while another job pulled that open_kfid; that pull goes round once more.
 */
export type InboundResult =
  | { action: 'replied'; replies: number }
  | { action: 'requeued'; replies: number; sent: number; outboundJobId: string; reason: string }
  | { action: 'pulled'; pages: number; messages: number }
  | { action: 'none' | 'transferred' | 'handoff' | 'history' | 'joined' };

/** An inbound job's outcome by name. */
export type InboundAction = InboundResult['action'];

/** Every outcome name an inbound job's result may hold. */
export const INBOUND_ACTIONS: readonly InboundAction[] = [
  'replied',
  'requeued',
  'none',
  'transferred',
  'handoff',
  'history',
  'pulled',
  'joined',
];

/** Names older workers wrote, and the name each has now (jobs are kept for days: they are read back). */
const FORMER_ACTIONS: ReadonlyMap<string, InboundAction> = new Map([['handed_off', 'requeued']]);

/**
 * A stored inbound job's return value as an InboundResult, a former outcome name read as its current one;
 * undefined when it holds none (a job not completed, or a result this version does not know).
 */
export function readInboundResult(value: unknown): InboundResult | undefined {
  if (typeof value !== 'object' || value === null || !('action' in value) || typeof value.action !== 'string') {
    return undefined;
  }
  // Written by a worker as an InboundResult (only its name may be a former one): its fields are checked all the same.
  const action = FORMER_ACTIONS.get(value.action) ?? value.action;
  const replies = 'replies' in value ? value.replies : undefined;
  switch (action) {
    case 'replied':
      return typeof replies === 'number' ? { ...value, action, replies } : undefined;
    case 'requeued': {
      const sent = 'sent' in value ? value.sent : undefined;
      const outboundJobId = 'outboundJobId' in value ? value.outboundJobId : undefined;
      const reason = 'reason' in value ? value.reason : undefined;
      const complete = typeof replies === 'number' && typeof sent === 'number';
      if (!complete || typeof outboundJobId !== 'string' || typeof reason !== 'string') return undefined;
      return { ...value, action, replies, sent, outboundJobId, reason };
    }
    case 'pulled': {
      const pages = 'pages' in value ? value.pages : undefined;
      const messages = 'messages' in value ? value.messages : undefined;
      return typeof pages === 'number' && typeof messages === 'number'
        ? { ...value, action, pages, messages }
        : undefined;
    }
    case 'none':
    case 'transferred':
    case 'handoff':
    case 'history':
    case 'joined':
      return { ...value, action };
    default:
      return undefined;
  }
}
