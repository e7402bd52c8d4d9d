import type { KfAgent } from '@wx-kf/shared/api';

export interface SimAgent extends KfAgent {
  online: boolean;
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

  agentsOf(appId: string): Map<string, SimAgent> {
    let agents = this.agents.get(appId);
    if (!agents) {
      agents = new Map();
      this.agents.set(appId, agents);
    }
    return agents;
  }

  /** The users waiting on the account, by openid (created empty on first use). */
  waitingOf(appId: string): Map<string, number> {
    let waiting = this.waiting.get(appId);
    if (!waiting) {
      waiting = new Map();
      this.waiting.set(appId, waiting);
    }
    return waiting;
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
