import type { Erasure, UserView } from '@wx-kf/shared/conversation';
import { OPENID_PATTERN } from '@wx-kf/shared/openid';
import type { Command } from 'commander';
import { clip, print } from '../cli-output.js';
import { type CliContext, CliError, unknownAccount } from './context.js';

/** `pnpm queues user` for humans: the window and the grants in a line each, then the timeline, newest last. */
export function formatUser(appId: string, openid: string, view: UserView): string {
  const w = view.window;
  const window = w.open
    ? `open until ${w.until}, ${w.left} send(s) left (opened by ${w.trigger ?? 'unknown'})`
    : `closed${w.until ? ` since ${w.until}` : ''}: nothing can be sent until the user writes again`;
  const lines = view.timeline.map(
    (e) =>
      `  ${e.at}  ${e.direction === 'in' ? '←' : '→'} ${e.kind}${e.summary ? ` "${e.summary}"` : ''}  ${e.result}  (${e.jobId})`,
  );
  // Template ids are letters, digits, - and _ (the ledger keeps no other): safe to print as they are.
  const grants = Object.entries(view.grants ?? {}).map(([template, n]) => `${template} ×${n}`);
  return [
    `${appId} / ${openid}`,
    `window: ${window}`,
    `grants: ${grants.length ? grants.join(', ') : 'none (a subscribe message needs the user to accept its template)'}`,
    lines.length ? `timeline (${lines.length}, newest last):\n${lines.join('\n')}` : 'timeline: empty',
  ].join('\n');
}

/** `pnpm queues forget` for humans: what was erased, kind by kind. */
export function formatErasure(e: Erasure): string {
  const x = e.erased;
  const kinds = [
    `send window ${x.window}`,
    `order ${x.order}`,
    `timeline entries ${x.timelineEntries}`,
    `AI context entries ${x.contextEntries}`,
    `handoff ${x.handoff}`,
    `stored model answers ${x.storedAnswers}`,
    `model rate counter ${x.modelRate}`,
    `model claim ${x.modelClaim}`,
    `subscribe grants ${x.grants}`,
    `queue jobs ${x.jobs}`,
  ];
  const running = e.jobsRunning ? `\n${e.jobsRunning} job(s) being processed were left to finish` : '';
  return `erased ${e.appId} / ${e.openid}: ${kinds.join(', ')}${running}`;
}

/** The checks `user` and `forget` share: an OpenID, and a configured account when the configuration loads. */
function checkUser(config: CliContext['config'], appId: string, openid: string) {
  if (!OPENID_PATTERN.test(openid))
    throw new CliError(`"${clip(openid, 70)}" is not an OpenID (or a WeCom external_userid)`);
  // The age cap and the accounts, when the configuration loads (without it, any appId is looked up).
  const configured = config.ifLoads();
  const known = configured?.accounts.map((a) => a.appId);
  if (known && !known.includes(appId)) throw unknownAccount(appId, known);
  return configured;
}

/**
 * `user <appId> <openid>`: a user's send window and timeline; `forget <appId> <openid>`: erase everything kept
 * about the user (the ledger's modules load with the command).
 */
export function registerUserCommands(program: Command, { redis, config }: CliContext): void {
  program
    .command('user <appId> <openid>')
    .description(
      "a user's send window (open until, sends left, what opened it) and timeline, newest last; for a WeCom corp (wecom-kf), its CorpID and the customer's external_userid",
    )
    .option('--json', 'machine-readable output')
    .action(async (appId: string, openid: string, opts) => {
      const configured = checkUser(config, appId, openid);
      const { Conversations, DEFAULT_TIMELINE } = await import('@wx-kf/shared/conversation');
      const timeline = configured?.timeline ?? DEFAULT_TIMELINE;
      const view = await new Conversations(redis, { timeline }).view(appId, openid);
      print(opts.json, view, () => formatUser(appId, openid, view));
    });
  program
    .command('forget <appId> <openid>')
    .description(
      'erase everything kept about a user (send window, order, timeline, AI context, handoff, stored model answers, the queue jobs of their messages) and say what was erased',
    )
    .option('--json', 'machine-readable output')
    .action(async (appId: string, openid: string, opts) => {
      checkUser(config, appId, openid);
      const { forgetUser } = await import('@wx-kf/shared/conversation');
      const erasure = await forgetUser(redis, appId, openid);
      print(opts.json, erasure, () => formatErasure(erasure));
    });
}
