// Code measures for the renovation bar (issue 25): files over 300 lines, functions over 80 lines and type
// assertions per 1 000 lines, over the source outside tests and bench.
// Usage: node --conditions=wx-kf-source --import tsx scripts/measure-code.ts [root] [--only prefix,…] [--sites]
// (--only: files whose path starts with a prefix; --sites: every assertion with its line).
import { type Dirent, readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import ts from 'typescript';

const FILE_LIMIT = 300;
const FUNCTION_LIMIT = 80;
const SOURCE_ROOTS = ['apps', 'packages', 'scripts'];
const SKIPPED_DIRS = new Set(['node_modules', 'dist', 'bench', 'test', 'fixtures']);

interface FileMeasure {
  path: string;
  lines: number;
  casts: string[];
  functions: { name: string; line: number; lines: number; routes: boolean }[];
}

/** The `.ts` sources below `dir`, tests (`*.test.ts`) and bench excluded. */
function sourceFiles(dir: string): string[] {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return SKIPPED_DIRS.has(entry.name) ? [] : sourceFiles(path);
    return /\.(c|m)?ts$/.test(entry.name) && !/\.(test|d)\.(c|m)?ts$/.test(entry.name) ? [path] : [];
  });
}

/** What a reader would call a function: its own name, its variable's or property's, or the call it is passed to. */
function functionName(node: ts.FunctionLikeDeclaration, file: ts.SourceFile): string {
  if (node.name) return node.name.getText(file);
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  const parent = node.parent;
  if ((ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent)) && parent.name) {
    return parent.name.getText(file);
  }
  if (ts.isCallExpression(parent)) {
    const first = parent.arguments[0];
    const label = first && ts.isStringLiteral(first) ? `(${first.text})` : '';
    return `${parent.expression.getText(file)}${label} callback`;
  }
  return '(anonymous)';
}

/** A Fastify plugin or a function given the instance to register routes on (may be long, as in fastify/demo). */
function registersRoutes(node: ts.FunctionLikeDeclaration, file: ts.SourceFile): boolean {
  const declared = ts.isVariableDeclaration(node.parent) ? node.parent.type?.getText(file) : undefined;
  const first = node.parameters[0]?.type?.getText(file);
  return Boolean(declared?.startsWith('FastifyPlugin') || first?.startsWith('FastifyInstance'));
}

function measure(root: string, path: string): FileMeasure {
  const text = readFileSync(path, 'utf8');
  const file = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true);
  const lineOf = (pos: number) => file.getLineAndCharacterOfPosition(pos).line + 1;
  const result: FileMeasure = {
    path: relative(root, path),
    lines: text.split('\n').length - 1,
    casts: [],
    functions: [],
  };
  const visit = (node: ts.Node): void => {
    if (ts.isAsExpression(node) || ts.isTypeAssertionExpression(node)) {
      const isConst = ts.isTypeReferenceNode(node.type) && node.type.typeName.getText(file) === 'const';
      if (!isConst) result.casts.push(`${lineOf(node.getStart(file))}: ${node.getText(file).replace(/\s+/g, ' ')}`);
    } else if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const line = lineOf(node.getStart(file));
      const lines = lineOf(node.getEnd()) - line + 1;
      if (lines > FUNCTION_LIMIT) {
        result.functions.push({ name: functionName(node, file), line, lines, routes: registersRoutes(node, file) });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return result;
}

function table(title: string, header: string[], rows: (string | number)[][]): void {
  console.log(`\n${title}`);
  if (rows.length === 0) return void console.log('  (none)');
  const cells = [header, ...rows].map((row) => row.map(String));
  const widths = header.map((_, i) => Math.max(...cells.map((row) => row[i]?.length ?? 0)));
  for (const row of cells) console.log(`  ${row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ')}`.trimEnd());
}

const args = process.argv.slice(2);
const sites = args.includes('--sites');
const onlyAt = args.indexOf('--only');
const only = onlyAt >= 0 ? (args.splice(onlyAt, 2)[1] ?? '').split(',').filter(Boolean) : [];
const root = resolve(args.find((arg) => !arg.startsWith('--')) ?? '.');
const files = SOURCE_ROOTS.flatMap((dir) => sourceFiles(join(root, dir)))
  .map((path) => measure(root, path))
  .filter((f) => only.length === 0 || only.some((prefix) => f.path.startsWith(prefix)))
  .sort((a, b) => a.path.localeCompare(b.path));

const perThousand = (casts: number, lines: number) => (lines === 0 ? 0 : (casts * 1000) / lines).toFixed(1);
const long = files.filter((f) => f.lines > FILE_LIMIT).sort((a, b) => b.lines - a.lines);
const functions = files
  .flatMap((f) => f.functions.map((fn) => ({ ...fn, path: f.path })))
  .sort((a, b) => b.lines - a.lines);
table(
  `Files over ${FILE_LIMIT} lines`,
  ['lines', 'file'],
  long.map((f) => [f.lines, f.path]),
);
table(
  `Functions over ${FUNCTION_LIMIT} lines`,
  ['lines', 'function', 'where', 'note'],
  functions.map((fn) => [fn.lines, fn.name, `${fn.path}:${fn.line}`, fn.routes ? 'registers routes' : '']),
);
table(
  'Type assertions (`as X`, `<X>y`; `as const` not counted), files with any',
  ['casts', 'lines', 'per 1 000', 'file'],
  files
    .filter((f) => f.casts.length > 0)
    .map((f) => [f.casts.length, f.lines, perThousand(f.casts.length, f.lines), f.path]),
);
const lines = files.reduce((sum, f) => sum + f.lines, 0);
const casts = files.reduce((sum, f) => sum + f.casts.length, 0);
if (sites) for (const f of files) for (const site of f.casts) console.log(`  ${f.path}:${site.slice(0, 140)}`);
const sizes = files.map((f) => f.lines).sort((a, b) => a - b);
const median = sizes[Math.floor(sizes.length / 2)] ?? 0;
console.log(
  `\nTotal: ${files.length} files, ${lines} lines (median ${median}, max ${sizes.at(-1) ?? 0}); ` +
    `${long.length} over ${FILE_LIMIT} lines; ${functions.length} functions over ${FUNCTION_LIMIT} lines; ` +
    `${casts} casts, ${perThousand(casts, lines)} per 1 000 lines`,
);
