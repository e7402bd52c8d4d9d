import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from './errors.js';

/**
 * Reads a JSON or YAML file and validates it; every problem becomes one line `file:line:col: path: message`
 * pointing at the offending value.
 */
export function loadStructuredFile<T>(file: string, schema: z.ZodType<T>, label: string): T {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError([`${label} ${file}: cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const where = (offset: number | undefined) => {
    if (offset === undefined) return file;
    const { line, col } = lineCounter.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => `${where(e.pos[0])}: ${e.message.split('\n')[0]}`));
  }
  const result = schema.safeParse(doc.toJS());
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((issue) => {
      // Point at the deepest node that exists on the issue's path.
      let node: unknown;
      for (let n = issue.path.length; n >= 0 && !node; n--) {
        node = n === 0 ? doc.contents : doc.getIn(issue.path.slice(0, n) as (string | number)[], true);
      }
      const range = (node as { range?: [number, number] } | undefined)?.range;
      const path = issue.path.length ? issue.path.join('.') : '(top level)';
      return `${where(range?.[0])}: ${path}: ${issue.message}`;
    }),
  );
}
