import type { WindowTrigger } from './rules.js';

/** A user's send window as the CLI and the API show it. */
export interface WindowView {
  /** The window has not ended (nor been closed by WeChat); `left` may still be 0. */
  open: boolean;
  until: string | null;
  left: number;
  trigger: WindowTrigger | null;
}

/** The ledger's answer before a send: one send taken from the window, or why none may go out. */
export type Take =
  /** `grantAt`: the action time of the grant the send was taken from (a refund needs the same grant). */
  | { ok: true; left: number; until: number; grantAt: number }
  | { ok: false; reason: 'closed' | 'exhausted'; message: string; until: number };

/** What a send's outcome does to the window: give the send back, or close it as WeChat said (45047 / 45015). */
export type SettleEffect = 'refund' | 'exhausted' | 'closed';

/** The refusal a closed or spent window gives, in words an operator and a caller understand. */
function refusal(reason: 'closed' | 'exhausted', until: number): string {
  if (reason === 'exhausted') return 'no sends left until the user writes again';
  // An ended window's record expires with it: then when it ended is not known any more.
  return until > 0
    ? `window closed at ${new Date(until).toISOString()}`
    : 'window closed (the user has not acted recently)';
}

/** A take script's reply, {1, left, until, at} or {0, reason, until, ''}, as a Take. */
export function takeOf(values: readonly unknown[]): Take {
  const [ok, value, until, at] = values;
  if (Number(ok) === 1) return { ok: true, left: Number(value), until: Number(until), grantAt: Number(at) };
  const reason = value === 'exhausted' ? 'exhausted' : 'closed';
  return { ok: false, reason, message: refusal(reason, Number(until)), until: Number(until) };
}

const TRIGGERS: readonly string[] = [
  'message',
  'enter_session',
  'click',
  'subscribe',
  'scan',
] satisfies WindowTrigger[];
const isTrigger = (value: string | undefined): value is WindowTrigger => TRIGGERS.includes(value ?? '');

/** A window hash as shown at `now`; `refusal` says why a send would be refused now. */
export function windowView(hash: Record<string, string>, now: number): WindowView & { refusal?: string } {
  const until = Number(hash.until ?? 0);
  const closed = hash.closed ? Number(hash.closed) : undefined;
  const open = until > now && closed === undefined;
  const left = open ? Number(hash.left ?? 0) : 0;
  const trigger = isTrigger(hash.trigger) ? hash.trigger : null;
  const view: WindowView & { refusal?: string } = {
    open,
    until: until > 0 ? new Date(closed ?? until).toISOString() : null,
    left,
    trigger,
  };
  if (!open) view.refusal = refusal('closed', closed ?? until);
  else if (left <= 0) view.refusal = refusal('exhausted', until);
  return view;
}
