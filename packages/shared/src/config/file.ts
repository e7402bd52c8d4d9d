import { readFileSync } from 'node:fs';
import { isNode, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { isRecord } from '../record.js';
import { ConfigError } from './errors.js';

/** Why a file could not be read, as Node names it (`ENOENT`, `EACCES`…), or `error`. */
export function readErrorCode(error: unknown): string {
  return isRecord(error) && typeof error.code === 'string' ? error.code : 'error';
}

/** The reason of a JSON.parse error without the file content V8 may quote in it, and where it happened. */
function jsonSyntax(text: string, error: unknown): { offset: number; reason: string } {
  const message = error instanceof Error ? error.message : String(error);
  const at = /at position (\d+)/.exec(message);
  const reason = (message.split(/ in JSON| after JSON|, "| \(|\n/)[0] ?? 'syntax error').slice(0, 80);
  return { offset: at ? Number(at[1]) : text.length, reason };
}

/**
 * Reads a JSON or YAML file and validates it; every problem becomes one line `file:line:col: path: message`
 * pointing at the offending value. A syntax error is one line (the first one: later ones only follow from it),
 * and never quotes the file's content (it may hold secrets).
 */
export function loadStructuredFile<T>(file: string, schema: z.ZodType<T>, label: string): T {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError([`${label} ${file}: cannot be read (${readErrorCode(error)})`]);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const where = (offset: number | undefined) => {
    if (offset === undefined) return file;
    const { line, col } = lineCounter.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  if (file.endsWith('.json')) {
    // A JSON file gets JSON's own diagnosis: the YAML parser reports a truncated file as several errors.
    try {
      JSON.parse(text);
    } catch (error) {
      const { offset, reason } = jsonSyntax(text, error);
      throw new ConfigError([`${where(offset)}: invalid JSON: ${reason}`]);
    }
  }
  const first = doc.errors[0];
  if (first) throw new ConfigError([`${where(first.pos[0])}: ${first.message.split('\n')[0]?.slice(0, 120)}`]);
  const result = schema.safeParse(doc.toJS());
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((issue) => {
      // Point at the deepest node that exists on the issue's path.
      let node: unknown;
      for (let n = issue.path.length; n >= 0 && !node; n--) {
        node = n === 0 ? doc.contents : doc.getIn(issue.path.slice(0, n), true);
      }
      const range = isNode(node) ? node.range : undefined;
      const path = issue.path.length ? issue.path.join('.') : '(top level)';
      return `${where(range?.[0])}: ${path}: ${issue.message}`;
    }),
  );
}
