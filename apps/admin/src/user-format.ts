import type { UserView } from '@wx-kf/shared/conversation';

// Apart from users.ts so that the CLI loads no HTTP or metrics code (its start time is what an operator waits for).

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
