// What the queue CLI's commands share for their output (no pino, no protocol layer: the CLI starts light).
import Table from 'cli-table3';

/** Cut to `max` characters (not @wx-kf/shared/log's clip: that module loads pino). */
export const clip = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);

// C0 controls but tab and newline, DEL, C1 controls, and the bidi marks, embeddings, overrides and isolates.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

/**
 * Text for a human's terminal: every control character shown as a visible `\uXXXX`. Job data, WeChat's answers
 * and error messages hold text of others' choosing; raw, an escape sequence in it would drive the terminal
 * (change its title, clear it, reorder a line).
 */
export const terminalSafe = (text: string) =>
  text.replace(UNSAFE, (c) => `\\u${(c.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`);

/** One line (or block) of human output, made terminal-safe. */
export const say = (text: string) => console.log(terminalSafe(text));

/**
 * JSON for `--json`, else the human text, terminal-safe. JSON.stringify escapes only C0 controls; the rest
 * (DEL, C1, bidi overrides) are escaped here too, which is still JSON: it parses back to the exact text.
 */
export const print = (json: boolean | undefined, data: unknown, human: () => string) =>
  json ? console.log(terminalSafe(JSON.stringify(data, null, 2))) : say(human());

/**
 * A table, without colour: its text goes through `terminalSafe`, which would show colour codes as text (and
 * escape codes would land in files and pipes anyway).
 */
export function table(head: string[]): Table.Table {
  return new Table({ head, style: { head: [], border: [] } });
}
