import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, posix } from 'node:path';
import { CONFIG_VARIABLES } from '@wx-kf/shared/config';
import { describe, expect, it } from 'vitest';

const root = new URL('../', import.meta.url);
const read = (file: string) => readFileSync(new URL(file, root), 'utf8');

/** README.md and every page under docs/, as paths relative to the repository root. */
const pages = [
  'README.md',
  ...readdirSync(new URL('docs/', root))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`),
];

/** The targets of inline Markdown links `[text](target)` outside fenced code blocks. */
function linkTargets(markdown: string): string[] {
  const prose = markdown.replace(/^```[\s\S]*?^```/gm, '');
  return [...prose.matchAll(/\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1] as string);
}

const external = (target: string) => /^[a-z][a-z0-9+.-]*:/i.test(target);

describe('docs match the code', () => {
  it('.env.example lists every configuration variable, and nothing else', () => {
    const listed = [...read('.env.example').matchAll(/^#?\s?([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]);
    expect(new Set(listed)).toEqual(new Set(CONFIG_VARIABLES));
  });

  it('.env.example and the README give the same Redis bytes per timeline entry (issue 27)', () => {
    const figure = (text: string) => /(\d+-\d+) bytes per\s+(?:#\s*)?(?:timeline\s+)?entry/.exec(text)?.[1];
    expect(figure(read('.env.example'))).toBeDefined();
    expect(figure(read('.env.example'))).toBe(figure(read('README.md')));
  });

  it('the accounts file .env.example suggests is ignored by git: it holds secrets (issue 27)', () => {
    const suggested = /WECHAT_ACCOUNTS_FILE=\.\/(\S+)/.exec(read('.env.example'))?.[1];
    expect(suggested).toBe('accounts.yaml');
    expect(read('.gitignore').split('\n')).toContain(`/${suggested}`);
  });

  it('docs/configuration.md documents every configuration variable', () => {
    const page = read('docs/configuration.md');
    for (const name of CONFIG_VARIABLES) expect(page, name).toContain(`\`${name}\``);
  });

  it('the README documents every root command', () => {
    const readme = read('README.md');
    const scripts = Object.keys(JSON.parse(read('package.json')).scripts as Record<string, string>);
    for (const script of scripts) expect(readme, script).toContain(`pnpm ${script}`);
  });

  it('the README links every page under docs/', () => {
    const linked = new Set(linkTargets(read('README.md')).map((target) => posix.normalize(target)));
    for (const page of pages.filter((p) => p.startsWith('docs/'))) expect([...linked], page).toContain(page);
  });

  it('every relative link in README.md and docs/*.md points at an existing file, without an anchor', () => {
    const problems: string[] = [];
    for (const page of pages) {
      for (const target of linkTargets(read(page))) {
        if (external(target)) continue;
        if (target.includes('#')) {
          problems.push(`${page}: ${target}: links carry no anchor (headings change; link the file)`);
          continue;
        }
        const path = posix.normalize(posix.join(dirname(page), decodeURI(target)));
        if (path.startsWith('../') || !existsSync(new URL(path, root))) {
          problems.push(`${page}: ${target}: no such file in the repository`);
        }
      }
    }
    expect(problems).toEqual([]);
  });
});
