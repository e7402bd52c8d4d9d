import type { KfAgent } from '@wx-kf/shared/api';

export interface SimAgent extends KfAgent {
  online: boolean;
}

/** The map under `key`, added empty when there is none. */
function entryOf<K, V>(maps: Map<string, Map<K, V>>, key: string): Map<K, V> {
  let map = maps.get(key);
  if (!map) {
    map = new Map();
    maps.set(key, map);
  }
  return map;
}

/** A login code handed to a Mini Program. */
interface LoginCode {
  appId: string;
  openid: string;
  unionid?: string;
  risky: boolean;
  expiresAt: number;
}

/** Official Account agents, sessions and the waiting queue; Mini Program login codes (jscode2session). */
export class KfState {
  /** appId → agents by kf_account. */
  readonly agents = new Map<string, Map<string, SimAgent>>();
  /** `${appId}:${openid}` → the session's agent and creation time (s). */
  readonly sessions = new Map<string, { agent: string; createtime: number }>();
  /** appId → users waiting, with the time of their latest message (s). */
  readonly waiting = new Map<string, Map<string, number>>();
  /** Login codes handed to a Mini Program (single use, 5 minutes). */
  readonly codes = new Map<string, LoginCode>();
  /** Every session_key handed out (tests check none reaches a log). */
  readonly sessionKeys: string[] = [];
  private nextId = 1001;

  reset(): void {
    this.agents.clear();
    this.sessions.clear();
    this.waiting.clear();
    this.codes.clear();
    this.sessionKeys.length = 0;
  }

  /** The account's agents by kf_account (created empty on first use). */
  agentsOf(appId: string): Map<string, SimAgent> {
    return entryOf(this.agents, appId);
  }

  /** The users waiting on the account, by openid (created empty on first use). */
  waitingOf(appId: string): Map<string, number> {
    return entryOf(this.waiting, appId);
  }

  /** The sessions an agent of the account holds: openid and creation time (s). */
  sessionsOf(appId: string, agent: string): { openid: string; createtime: number }[] {
    return [...this.sessions.entries()]
      .filter(([key, session]) => key.startsWith(`${appId}:`) && session.agent === agent)
      .map(([key, session]) => ({ createtime: session.createtime, openid: key.slice(appId.length + 1) }));
  }

  newAgent(account: string, nickname: string): SimAgent {
    const id = String(this.nextId++);
    return { kf_account: account, kf_nick: nickname, kf_id: id, kf_headimgurl: '', online: false };
  }
}
