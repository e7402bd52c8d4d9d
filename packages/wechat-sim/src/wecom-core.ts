import { randomBytes } from 'node:crypto';
import type { WeComErrorName } from './wecom-errcodes.js';
import { WeComLog } from './wecom-log.js';
import { WeComSessions } from './wecom-sessions.js';

/** A WeCom corp with 微信客服 as the simulator knows it. */
export interface SimCorp {
  corpId: string;
  /** The 微信客服 secret (gettoken's corpsecret). */
  secret: string;
  /** The callback Token and EncodingAESKey configured for the callback URL. */
  token: string;
  aesKey: string;
  kfAccounts: { openKfId: string; name: string }[];
  /** The corp's members who may take a session (service_state 3); default ['agent1']. */
  servicers?: string[];
}

export interface WeComOptions {
  corps: SimCorp[];
  /** Clock in ms (default: the simulator's). */
  now?: () => number;
  /** sync_msg calls without a callback Token wait this long (WeCom rate-limits them harder). */
  noTokenDelayMs?: number;
  /** Called for every message send_msg or send_msg_on_event delivers (the demo prints them). */
  onSend?: (message: WeComSent) => void;
}

/** A message WeCom delivered to a customer for the API. */
export interface WeComSent {
  corpId: string;
  openKfId: string;
  touser: string;
  msgid: string;
  msgtype: string;
  body: Record<string, unknown>;
  at: number;
  viaEvent?: boolean;
}

/** One service_state/trans call and its answer. */
export interface WeComTransCall {
  corpId: string;
  openKfId: string;
  externalUserId: string;
  from: number;
  to: number;
  servicer: string;
  errcode: number;
  at: number;
}

/** Who a send_msg_on_event code lets the API answer. */
interface EventCode {
  corpId: string;
  openKfId: string;
  externalUserId: string;
  issuedAt: number;
  used: boolean;
}

/** A refused call: the name of its error in WECOM_SIM_ERRCODES. */
export interface Refused {
  name: WeComErrorName;
}

const SYNC_TOKEN_MS = 10 * 60_000;
const CODE_MS = 20_000;

/** A key made of letters and digits, as WeCom's tokens and codes are (safe in XML and URLs). */
const randomKey = (prefix: string, bytes: number) =>
  `${prefix}${randomBytes(bytes).toString('base64url').replace(/[-_]/g, 'x')}`;

/**
 * WeCom's server side for 微信客服 as the API sees it: corps, access tokens, callback Tokens, event codes, the
 * message logs, sessions, what was sent, and the counters tests read (token requests, sync calls and how many
 * overlapped, duplicate sends).
 */
export class WeComCore {
  readonly corps = new Map<string, SimCorp>();
  readonly log = new WeComLog();
  readonly sessions = new WeComSessions();
  readonly sent: WeComSent[] = [];
  readonly transCalls: WeComTransCall[] = [];
  /** gettoken requests per corp (a fault's too). */
  readonly tokenRequests = new Map<string, number>();
  syncCalls = 0;
  readonly syncCallsByKf = new Map<string, number>();
  syncsWithoutToken = 0;
  /** The most sync_msg calls in flight at once, per open_kfid (1 = the caller pulls single-flight). */
  readonly maxConcurrentSyncs = new Map<string, number>();
  /** Sends answered 0 without delivering because their msgid was accepted before. */
  duplicateSends = 0;
  readonly now: () => number;
  readonly noTokenDelayMs: number;
  protected readonly onSend: ((message: WeComSent) => void) | undefined;
  private readonly tokenTtlSeconds: number;
  /** The simulator's temporary media (media/upload takes a corp's token too): what send_msg's media_id must name. */
  private readonly media: ReadonlyMap<string, { appId: string; expiresAt: number }>;
  private readonly accessTokens = new Map<string, { corpId: string; expiresAt: number }>();
  private readonly syncTokens = new Map<string, { corpId: string; issuedAt: number }>();
  private readonly codes = new Map<string, EventCode>();
  private readonly accepted = new Set<string>(); // `${corpId}:${msgid}`
  private readonly inFlight = new Map<string, number>();

  /** `sim`: the simulator's clock and token lifetime, used unless `options` names a clock of its own. */
  constructor(
    options: WeComOptions | undefined,
    sim: {
      now: () => number;
      options: { tokenTtlSeconds: number };
      media: ReadonlyMap<string, { appId: string; expiresAt: number }>;
    },
  ) {
    for (const corp of options?.corps ?? []) this.corps.set(corp.corpId, corp);
    this.now = options?.now ?? sim.now;
    this.noTokenDelayMs = options?.noTokenDelayMs ?? 0;
    this.onSend = options?.onSend;
    this.tokenTtlSeconds = sim.options.tokenTtlSeconds;
    this.media = sim.media;
  }

  reset(): void {
    this.log.reset();
    this.sessions.reset();
    this.sent.length = 0;
    this.transCalls.length = 0;
    this.tokenRequests.clear();
    this.syncCalls = 0;
    this.syncCallsByKf.clear();
    this.syncsWithoutToken = 0;
    this.maxConcurrentSyncs.clear();
    this.duplicateSends = 0;
    this.accessTokens.clear();
    this.syncTokens.clear();
    this.codes.clear();
    this.accepted.clear();
  }

  nowSeconds(): number {
    return Math.floor(this.now() / 1000);
  }

  /** The corp's kf account, or undefined when the corp has none by that open_kfid. */
  kfAccount(corpId: string, openKfId: string): { openKfId: string; name: string } | undefined {
    return this.corps.get(corpId)?.kfAccounts.find((a) => a.openKfId === openKfId);
  }

  servicersOf(corpId: string): readonly string[] {
    return this.corps.get(corpId)?.servicers ?? ['agent1'];
  }

  /**
   * gettoken: a new token per call (earlier ones stay valid until they expire; WeCom hands the same one back
   * while it is valid, and a client that caches cannot tell the difference). 40013 / 40001 for bad credentials.
   */
  getToken(
    corpId: string | undefined,
    secret: string | undefined,
  ): Refused | { access_token: string; expires_in: number } {
    const corp = corpId ? this.corps.get(corpId) : undefined;
    if (!corp) return { name: 'invalidCorpId' };
    if (secret !== corp.secret) return { name: 'invalidSecret' };
    const token = randomKey('SIMWW_', 48);
    this.accessTokens.set(token, { corpId: corp.corpId, expiresAt: this.now() + this.tokenTtlSeconds * 1000 });
    return { access_token: token, expires_in: this.tokenTtlSeconds };
  }

  countTokenRequest(corpId: string): void {
    this.tokenRequests.set(corpId, (this.tokenRequests.get(corpId) ?? 0) + 1);
  }

  /** The corp an access_token belongs to, or why the kf call is refused. */
  checkAccessToken(token: string | undefined): Refused | { corpId: string } {
    if (!token) return { name: 'missingAccessToken' };
    const issued = this.accessTokens.get(token);
    if (!issued) return { name: 'invalidAccessToken' };
    if (this.now() >= issued.expiresAt) return { name: 'expiredAccessToken' };
    return { corpId: issued.corpId };
  }

  /** Whether `mediaId` names media the corp uploaded (media/upload with its token) that has not expired (3 days). */
  hasMedia(corpId: string, mediaId: string): boolean {
    const media = this.media.get(mediaId);
    return media !== undefined && media.appId === corpId && this.now() < media.expiresAt;
  }

  /** Every access token of the corp expires now (tests of the 42001 path). */
  expireTokens(corpId: string): void {
    for (const issued of this.accessTokens.values()) if (issued.corpId === corpId) issued.expiresAt = this.now();
  }

  /** A callback Token for sync_msg, valid 10 minutes; `ageMs` issues one that old already. */
  issueToken(corpId: string, ageMs = 0): string {
    const token = randomKey('ENC', 30);
    this.syncTokens.set(token, { corpId, issuedAt: this.now() - ageMs });
    return token;
  }

  /** True when sync_msg may use this callback Token for this corp. */
  validSyncToken(corpId: string, token: string): boolean {
    const issued = this.syncTokens.get(token);
    return issued?.corpId === corpId && this.now() - issued.issuedAt < SYNC_TOKEN_MS;
  }

  /** A sync_msg call starts (counted, in flight); call the function returned when it ends. */
  syncStarted(openKfId: string, withToken: boolean): () => void {
    this.syncCalls++;
    this.syncCallsByKf.set(openKfId, (this.syncCallsByKf.get(openKfId) ?? 0) + 1);
    if (!withToken) this.syncsWithoutToken++;
    const now = (this.inFlight.get(openKfId) ?? 0) + 1;
    this.inFlight.set(openKfId, now);
    this.maxConcurrentSyncs.set(openKfId, Math.max(now, this.maxConcurrentSyncs.get(openKfId) ?? 0));
    return () => this.inFlight.set(openKfId, (this.inFlight.get(openKfId) ?? 1) - 1);
  }

  /** A code send_msg_on_event accepts once within 20 s (welcome_code, or a msg_code). */
  issueCode(corpId: string, openKfId: string, externalUserId: string): string {
    const code = randomKey('SIMCODE_', 24);
    this.codes.set(code, { corpId, openKfId, externalUserId, issuedAt: this.now(), used: false });
    return code;
  }

  /** Who the code lets the corp answer, when it is the corp's, unused and fresh; consumes it. */
  takeCode(corpId: string, code: string): { openKfId: string; externalUserId: string } | undefined {
    const issued = this.codes.get(code);
    if (!issued || issued.corpId !== corpId || issued.used || this.now() - issued.issuedAt > CODE_MS) return undefined;
    issued.used = true;
    return issued;
  }

  /** True when the corp accepted this msgid before (the call then answers 0 and delivers nothing). */
  isDuplicate(corpId: string, msgid: string | undefined): boolean {
    if (msgid === undefined || !this.accepted.has(`${corpId}:${msgid}`)) return false;
    this.duplicateSends++;
    return true;
  }

  /** Records a delivered message (its msgid given or generated) and returns the msgid. */
  deliver(message: Omit<WeComSent, 'msgid' | 'at'>, msgid = randomKey('SIMMSG_', 18)): string {
    this.accepted.add(`${message.corpId}:${msgid}`);
    const sent = { ...message, msgid, at: this.now() };
    this.sent.push(sent);
    this.onSend?.(sent);
    return msgid;
  }

  /** The delivered messages, in order, of a corp and/or to a customer. */
  sentTo(corpId?: string, touser?: string): WeComSent[] {
    return this.sent.filter((m) => (!corpId || m.corpId === corpId) && (!touser || m.touser === touser));
  }
}
