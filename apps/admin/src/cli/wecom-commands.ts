import type { AccountConfig, Config } from '@wx-kf/shared/config';
import { OPENID_PATTERN } from '@wx-kf/shared/openid';
import type { KfAccount, PullView, WeComClient } from '@wx-kf/shared/wecom';
import type { Command } from 'commander';
import { clip, print, table } from '../cli-output.js';
import { type CliContext, CliError } from './context.js';

/** How much of a cursor is shown: it is WeCom's opaque position, useful only to tell two apart. */
const CURSOR_PREFIX = 8;

/** A cursor as the CLI shows it: a short prefix and its length, or null when there is none. */
export interface CursorView {
  prefix: string;
  length: number;
}

/** What `wecom cursor --json` prints (null where there is nothing, as the other commands print). */
export interface CursorReport {
  corpId: string;
  openKfId: string;
  cursor: CursorView | null;
  notices: number;
  tokenAt: string | null;
  puller: string | null;
  pages: number;
}

const reportOf = (corpId: string, openKfId: string, v: PullView): CursorReport => ({
  corpId,
  openKfId,
  cursor: cursorView(v.cursor),
  notices: v.notices,
  tokenAt: v.tokenAt ?? null,
  puller: v.puller ?? null,
  pages: v.pages,
});

const cursorView = (cursor: string): CursorView | null =>
  cursor ? { prefix: cursor.slice(0, CURSOR_PREFIX), length: cursor.length } : null;

const cursorText = (c: CursorView | null) =>
  c ? `${c.prefix}${c.length > c.prefix.length ? '…' : ''} (${c.length} characters)` : 'none';

/** The configured `wecom-kf` account of a CorpID; a one-line refusal for anything else. */
export function wecomCorp(accounts: readonly AccountConfig[], corpId: string): AccountConfig {
  const corp = accounts.find((a) => a.appId === corpId);
  if (corp?.type === 'wecom-kf') return corp;
  if (corp) throw new CliError(`account "${corpId}" is a ${corp.type}, not a WeCom customer-service corp (wecom-kf)`);
  const corps = accounts.filter((a) => a.type === 'wecom-kf').map((a) => a.appId);
  const configured = corps.length ? `wecom-kf accounts configured: ${clip(corps.join(', '), 200)}` : 'none configured';
  throw new CliError(`unknown WeCom corp "${clip(corpId, 40)}" (${configured})`);
}

/** An open_kfid looks like an OpenID (letters, digits, - and _): anything else is refused before Redis is read. */
function checkKfId(openKfId: string): void {
  if (!OPENID_PATTERN.test(openKfId)) throw new CliError(`"${clip(openKfId, 70)}" is not an open_kfid`);
}

/** `wecom cursor` for humans: one line per part of the pull's state. */
export function formatCursor(r: CursorReport): string {
  return [
    `${r.corpId} / ${r.openKfId}`,
    `cursor: ${r.cursor ? cursorText(r.cursor) : 'none (the next pull starts at what WeCom still keeps: 3 days)'}`,
    `notices counted: ${r.notices}`,
    `newest Token: ${r.tokenAt ?? 'none'}`,
    `puller: ${r.puller ? `${r.puller} (pulling now)` : 'none'}`,
    `pages pulled, not yet stored: ${r.pages}`,
  ].join('\n');
}

/** What `--reset` says: where the next pull starts, and what it will not answer. */
function resetText(r: CursorReport, historySeconds: number): string {
  const running = r.puller ? `; the pull running (${r.puller}) stops at its next page` : '';
  return [
    `forgot the cursor of ${r.corpId} / ${r.openKfId} (was ${cursorText(r.cursor)})${running}`,
    `the next pull starts at what WeCom still keeps (3 days), as a first pull: messages older than ${historySeconds} s (WECOM_HISTORY_MAX_AGE_SECONDS) are recorded in the timeline and not answered`,
  ].join('\n');
}

/**
 * Runs `op` with a WeCom client of the corp on its own connections (WeCom's API origin and errcodes, the corp's
 * token shared with the workers through Redis), closed after. Loaded here, not at import: the other commands
 * start without the HTTP client. WeCom's refusals (and a token refused for the secret) become one line.
 */
async function withWeCom(
  { redis }: CliContext,
  corp: AccountConfig,
  where: Pick<Config['api'], 'wecomBase' | 'proxy'>,
  op: (kf: WeComClient) => Promise<void>,
) {
  const [{ WeChatApiError, TokenUnavailableError }, { wecomApi }, { createLogger }] = await Promise.all([
    import('@wx-kf/shared/api'),
    import('@wx-kf/shared/wecom'),
    import('@wx-kf/shared/log'),
  ]);
  const logger = createLogger('queues', { level: 'silent' });
  const api = wecomApi({ base: where.wecomBase, proxy: where.proxy, redis, corps: [corp], logger });
  try {
    await op(api.kf);
  } catch (error) {
    if (error instanceof WeChatApiError || error instanceof TokenUnavailableError) {
      throw new CliError(`WeCom refused: ${error.errcode} ${error.errmsg}`);
    }
    throw error;
  } finally {
    await api.close();
  }
}

function accountsText(corpId: string, list: KfAccount[]): string {
  if (list.length === 0) return `${corpId} has no customer-service account`;
  const t = table(['open_kfid', 'name']);
  for (const a of list) t.push([a.openKfId, a.name]);
  return t.toString();
}

/**
 * `wecom cursor <CorpID> <open_kfid> [--reset]`: an open_kfid's pull state (PullState.view), or forget its cursor;
 * `wecom accounts <CorpID>`: the corp's customer-service accounts (kf/account/list). Only for `wecom-kf` accounts.
 */
export function registerWeComCommands(program: Command, ctx: CliContext): void {
  const wecom = program
    .command('wecom')
    .description(
      'WeCom customer service (微信客服, wecom-kf accounts): the pull cursor of an open_kfid, the corp’s accounts',
    );
  wecom
    .command('cursor <corpId> <openKfId>')
    .description(
      'an open_kfid’s pull state: cursor (prefix and length), notices counted, newest Token, puller, pages not yet stored',
    )
    .option('--reset', 'forget the cursor: the next pull starts at what WeCom still keeps (3 days)')
    .option('--json', 'machine-readable output')
    .action(async (corpId: string, openKfId: string, opts) => {
      const config = ctx.config.get();
      wecomCorp(config.accounts, corpId);
      checkKfId(openKfId);
      const { PullState } = await import('@wx-kf/shared/wecom');
      const state = new PullState(ctx.redis);
      const report = reportOf(corpId, openKfId, await state.view(corpId, openKfId));
      if (opts.reset) {
        await state.resetCursor(corpId, openKfId);
        const historySeconds = Math.round(config.wecom.historyMaxAgeMs / 1000);
        const json = { corpId, openKfId, reset: true, previous: report.cursor, historyMaxAgeSeconds: historySeconds };
        print(opts.json, json, () => resetText(report, historySeconds));
      } else {
        print(opts.json, report, () => formatCursor(report));
      }
    });
  wecom
    .command('accounts <corpId>')
    .description('the corp’s customer-service accounts: open_kfid and name (kf/account/list)')
    .option('--json', 'machine-readable output')
    .action(async (corpId: string, opts) => {
      const config = ctx.config.get();
      const corp = wecomCorp(config.accounts, corpId);
      await withWeCom(ctx, corp, config.api, async (kf) => {
        const list = await kf.accounts(corp.appId);
        print(opts.json, list, () => accountsText(corp.appId, list));
      });
    });
}
