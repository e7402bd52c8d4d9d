import type { WeComErrorName } from './wecom-errcodes.js';

/** WeCom's service_state: 0 new, 1 with the assistant (the API), 2 queued, 3 with a person, 4 ended. */
export type ServiceState = 0 | 1 | 2 | 3 | 4;

export const isServiceState = (value: unknown): value is ServiceState =>
  value === 0 || value === 1 || value === 2 || value === 3 || value === 4;

/** One customer's session with one kf account, and the send window its last message opened. */
export interface WeComSession {
  state: ServiceState;
  servicer: string;
  /** When the customer last wrote (ms); send_msg is allowed for 48 h after. */
  lastCustomerAt?: number;
  /** API messages sent since that message (at most 5). */
  sentSince: number;
}

/** The customer's message opens 48 h... */
const WINDOW_MS = 48 * 3600 * 1000;
/** ...for at most 5 API messages. */
const WINDOW_SENDS = 5;

/** The moves service_state/trans allows, by current state. */
const MOVES: Record<ServiceState, readonly ServiceState[]> = {
  0: [1, 2, 3, 4],
  1: [1, 2, 3, 4],
  2: [3, 4],
  3: [3, 4],
  4: [],
};

const keyOf = (corpId: string, openKfId: string, user: string) => `${corpId}:${openKfId}:${user}`;

/** Sessions per (corp, open_kfid, external_userid): their state, servicer and send window. */
export class WeComSessions {
  private readonly sessions = new Map<string, WeComSession>();

  reset(): void {
    this.sessions.clear();
  }

  /** The session as service_state/get sees it (state 0 when there is none yet). */
  get(corpId: string, openKfId: string, user: string): WeComSession {
    return this.sessions.get(keyOf(corpId, openKfId, user)) ?? { state: 0, servicer: '', sentSince: 0 };
  }

  private entry(corpId: string, openKfId: string, user: string): WeComSession {
    const key = keyOf(corpId, openKfId, user);
    const session = this.sessions.get(key) ?? { state: 0, servicer: '', sentSince: 0 };
    this.sessions.set(key, session);
    return session;
  }

  /** The customer wrote at `at` (ms): a new session unless one is open, and a fresh send window. */
  customerWrote(corpId: string, openKfId: string, user: string, at: number): void {
    const session = this.entry(corpId, openKfId, user);
    if (session.state === 4) Object.assign(session, { state: 0, servicer: '' });
    if (session.lastCustomerAt !== undefined && at < session.lastCustomerAt) return;
    session.lastCustomerAt = at;
    session.sentSince = 0;
  }

  /** Why send_msg may not send to this customer now, or undefined when it may. */
  refusal(corpId: string, openKfId: string, user: string, now: number): WeComErrorName | undefined {
    const session = this.get(corpId, openKfId, user);
    if (session.state > 1) return 'sessionStateNotAllowSend';
    const { lastCustomerAt, sentSince } = session;
    if (lastCustomerAt === undefined || now - lastCustomerAt >= WINDOW_MS) return 'sendCountLimit';
    return sentSince >= WINDOW_SENDS ? 'sendCountLimit' : undefined;
  }

  /** One API message went out (after `refusal` said yes). */
  countSend(corpId: string, openKfId: string, user: string): void {
    this.entry(corpId, openKfId, user).sentSince++;
  }

  /** Moves the session as service_state/trans does; the error's name when WeCom refuses the move. */
  trans(
    target: { corpId: string; openKfId: string; user: string },
    to: ServiceState,
    servicer: string,
  ): WeComErrorName | undefined {
    const session = this.entry(target.corpId, target.openKfId, target.user);
    if (!MOVES[session.state].includes(to)) return 'stateNotAllowTrans';
    if (session.state === 3 && to === 3 && servicer === session.servicer) return 'stateNotAllowTrans';
    session.state = to;
    session.servicer = to === 3 ? servicer : '';
    return undefined;
  }

  /** Sets a state directly (a servicer's action in the WeCom client, which needs no API rule). */
  set(corpId: string, openKfId: string, user: string, state: ServiceState, servicer: string): WeComSession {
    const session = this.entry(corpId, openKfId, user);
    const before = { ...session };
    Object.assign(session, { state, servicer });
    return before;
  }
}
