// What the queue CLI's commands share for their output (no pino, no protocol layer: the CLI starts light).
import Table from 'cli-table3';

/** Cut to `max` characters (not @wx-kf/shared/log's clip: that module loads pino). */
export const clip = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);

/** JSON for `--json`, else the human text. */
export const print = (json: boolean | undefined, data: unknown, human: () => string) =>
  console.log(json ? JSON.stringify(data, null, 2) : human());

/** A table; its header is coloured only on a terminal (escape codes would land in files and pipes). */
export function table(head: string[]): Table.Table {
  return new Table(process.stdout.isTTY ? { head } : { head, style: { head: [], border: [] } });
}
