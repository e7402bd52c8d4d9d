import type { UserView } from '@wx-kf/shared/conversation';
import { OPENID_PATTERN } from '@wx-kf/shared/openid';
import type { Command } from 'commander';
import { clip, print } from '../cli-output.js';
import { type CliContext, CliError, unknownAccount } from './context.js';

/** `pnpm queues user` for humans: the window in one line, then the timeline, newest last. */
export function formatUser(appId: string, openid: string, view: UserView): string {
  const w = view.window;
  const window = w.open
    ? `open until ${w.until}, ${w.left} send(s) left (opened by ${w.trigger ?? 'unknown'})`
    : `closed${w.until ? ` since ${w.until}` : ''}: nothing can be sent until the user writes again`;
  const lines = view.timeline.map(
    (e) =>
      `  ${e.at}  ${e.direction === 'in' ? '←' : '→'} ${e.kind}${e.summary ? ` "${e.summary}"` : ''}  ${e.result}  (${e.jobId})`,
  );
  return [
    `${appId} / ${openid}`,
    `window: ${window}`,
    lines.length ? `timeline (${lines.length}, newest last):\n${lines.join('\n')}` : 'timeline: empty',
  ].join('\n');
}

/** `user <appId> <openid>`: a user's send window and timeline (the ledger's modules load with the command). */
export function registerUserCommands(program: Command, { redis, config }: CliContext): void {
  program
    .command('user <appId> <openid>')
    .description("a user's send window (open until, sends left, what opened it) and timeline, newest last")
    .option('--json', 'machine-readable output')
    .action(async (appId: string, openid: string, opts) => {
      if (!OPENID_PATTERN.test(openid)) throw new CliError(`"${clip(openid, 70)}" is not an OpenID`);
      const { Conversations, DEFAULT_TIMELINE } = await import('@wx-kf/shared/conversation');
      // The age cap and the accounts, when the configuration loads (without it, any appId is looked up).
      const configured = config.ifLoads();
      const known = configured?.accounts.map((a) => a.appId);
      if (known && !known.includes(appId)) throw unknownAccount(appId, known);
      const timeline = configured?.timeline ?? DEFAULT_TIMELINE;
      const view = await new Conversations(redis, { timeline }).view(appId, openid);
      print(opts.json, view, () => formatUser(appId, openid, view));
    });
}
