import { WeChatApiError } from '../../api/errors.js';
import type { InboundMessage } from '../../wechat/message.js';
import type { WeComClient } from './client.js';
import { pulledMessage } from './message.js';
import type { PullState, PullTurn } from './pull-state.js';

/** A sync Token is valid 10 minutes after its callback; one older than this is not sent (a pull without is slower). */
export const SYNC_TOKEN_MS = 9 * 60_000;
/** kf/sync_msg's largest page. */
export const SYNC_LIMIT = 1000;
/** A message this much older than the pull that found it: its callback would have come by then (`late`). */
export const LATE_MS = 60_000;

export interface PullDeps {
  kf: WeComClient;
  state: PullState;
  /**
   * Stores pulled messages as inbound jobs (de-duplicated on msgid) with their conversation state, in order;
   * `history`: recorded in the timeline, not answered.
   */
  store: (corpId: string, messages: { message: InboundMessage; history: boolean }[]) => Promise<void>;
  /** A first pull (no cursor) answers none of the messages older than this. */
  historyMaxAgeMs: number;
  now?: () => number;
  /** Per page pulled: how many messages, how long sync_msg took. */
  onPage?: (corpId: string, messages: number, seconds: number) => void;
  /** Per item skipped (no customer named, or malformed). */
  onSkipped?: (corpId: string, raw: unknown) => void;
  /**
   * Whether the job holding an open_kfid's pull is gone for good (failed, completed, removed): then a notice
   * takes the pull over instead of joining a pull that nobody runs. Without it, a notice always joins.
   */
  holderGone?: (holder: string) => Promise<boolean>;
}

/**
 * How a notice's job ended: this worker pulled (pages, messages), or another puller had the open_kfid. `late`:
 * messages over LATE_MS old that the first round fetched from a cursor: no notice had pulled them in time.
 */
export type PullOutcome =
  | { action: 'pulled'; pages: number; messages: number; late: number }
  | { action: 'joined' }
  | { action: 'lost'; pages: number; messages: number; late: number };

/** The notice as its job carries it. */
export interface PullRequest {
  corpId: string;
  openKfId: string;
  /** The job's id: the puller's lock owner (a stalled job run again still owns its pull). */
  owner: string;
  token?: string | undefined;
  at: number;
}

/** Pull counts so far, and the round (0 while storing a crashed puller's pages). */
interface Counts {
  pages: number;
  messages: number;
  late: number;
  round: number;
}

/** Stores the pages pulled and not yet stored, oldest first; false when the lock was lost. */
async function storePending(deps: PullDeps, r: PullRequest, counts: Counts): Promise<boolean> {
  const now = (deps.now ?? Date.now)();
  // Later rounds pull what notices that joined announced; round 0 stores pages another puller fetched; a first
  // pull (no cursor: new, or reset) gets what earlier pulls may have stored already.
  const firstRound = counts.round === 1;
  for (;;) {
    const page = await deps.state.nextPage(r.corpId, r.openKfId);
    if (!page) return true;
    const messages: { message: InboundMessage; history: boolean }[] = [];
    for (const raw of page.items) {
      const message = pulledMessage(raw, r.openKfId);
      if (!message) {
        deps.onSkipped?.(r.corpId, raw);
        continue;
      }
      const sent = Number(message.CreateTime) * 1000;
      const history = page.first && sent < now - deps.historyMaxAgeMs;
      if (firstRound && !page.first && sent < now - LATE_MS) counts.late++;
      messages.push({ message, history });
    }
    await deps.store(r.corpId, messages);
    counts.messages += messages.length;
    if (!(await deps.state.pageStored(r.corpId, r.openKfId, r.owner, page))) return false;
  }
}

/**
 * Pulls from `turn.cursor` until WeCom has no more: `done`, or `lost` (another puller has the lock) or `moved` (an
 * operator reset the cursor: the pull starts again from it).
 */
async function pullPages(
  deps: PullDeps,
  r: PullRequest,
  turn: PullTurn,
  counts: Counts,
): Promise<'done' | 'lost' | 'moved'> {
  const now = deps.now ?? Date.now;
  let cursor = turn.cursor;
  let token = turn.token && now() - turn.tokenAt < SYNC_TOKEN_MS ? turn.token : undefined;
  // A first pull stays one when another puller (or this job's retry) takes it over after a crash.
  const first = cursor === '' || turn.first;
  for (let more = true; more; ) {
    const started = performance.now();
    let page: Awaited<ReturnType<WeComClient['syncMsg']>>;
    try {
      page = await deps.kf.syncMsg(r.corpId, { openKfId: r.openKfId, cursor, token, limit: SYNC_LIMIT });
    } catch (error) {
      // 95007: the Token is not (or no longer) valid: the pull goes on without one.
      if (token && error instanceof WeChatApiError && error.errcode === 95007) {
        token = undefined;
        continue;
      }
      throw error;
    }
    deps.onPage?.(r.corpId, page.msg_list.length, (performance.now() - started) / 1000);
    // A page that says "more" without moving on would be pulled forever: the job fails and is retried later.
    if (page.has_more && (page.next_cursor === '' || page.next_cursor === cursor)) {
      throw new Error('kf/sync_msg answered has_more without a new cursor');
    }
    counts.pages++;
    // An empty next_cursor (a page with nothing) keeps the cursor: '' would start a first pull again.
    const next = page.next_cursor || cursor;
    const saved = { first, items: page.msg_list, last: !page.has_more };
    const written = await deps.state.savePage(r.corpId, r.openKfId, r.owner, cursor, next, saved);
    if (written !== 'saved') return written;
    cursor = next;
    if (!(await storePending(deps, r, counts))) return 'lost';
    more = page.has_more;
  }
  return 'done';
}

const tally = ({ pages, messages, late }: Counts) => ({ pages, messages, late });

/** The turn to pull: the claim's, or (when the holder's job is gone for good) this notice's after taking over. */
async function claimTurn(deps: PullDeps, r: PullRequest): Promise<PullTurn | undefined> {
  const notice = { token: r.token, at: r.at };
  const claimed = await deps.state.claim(r.corpId, r.openKfId, r.owner, notice);
  if (!('holder' in claimed)) return claimed;
  if (!(await deps.holderGone?.(claimed.holder))) return undefined;
  await deps.state.release(r.corpId, r.openKfId, claimed.holder);
  const again = await deps.state.claim(r.corpId, r.openKfId, r.owner, { at: r.at });
  return 'holder' in again ? undefined : again;
}

/**
 * A pull notice's work: one puller per open_kfid across every worker. This worker pulls when the open_kfid is
 * free (or already its own: a stalled job run again, or its holder's job is gone), storing each page with the
 * cursor after it; a notice arriving meanwhile makes it go round once more. Another worker's notice only counts
 * itself and ends. A pull that fails lets go of the open_kfid, so the next notice pulls at once (and this job's
 * retry pulls again).
 */
export async function pull(deps: PullDeps, r: PullRequest): Promise<PullOutcome> {
  const claimed = await claimTurn(deps, r);
  if (!claimed) return { action: 'joined' };
  const counts: Counts = { pages: 0, messages: 0, late: 0, round: 0 };
  const lost = () => ({ action: 'lost' as const, ...tally(counts) });
  try {
    // A crashed puller's pages first: they were pulled, their cursor already moved past them.
    if (!(await storePending(deps, r, counts))) return lost();
    for (let turn: PullTurn | 'lost' | undefined = claimed; turn; ) {
      if (turn === 'lost') return lost();
      counts.round++;
      const ended = await pullPages(deps, r, turn, counts);
      if (ended === 'lost') return lost();
      turn =
        ended === 'moved'
          ? await deps.state
              .claim(r.corpId, r.openKfId, r.owner, { at: r.at })
              .then((t) => ('holder' in t ? 'lost' : t))
          : await deps.state.finish(r.corpId, r.openKfId, r.owner, turn.requested);
    }
    return { action: 'pulled', ...tally(counts) };
  } catch (error) {
    await deps.state.release(r.corpId, r.openKfId, r.owner).catch(() => undefined);
    throw error;
  }
}
