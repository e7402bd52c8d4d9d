import { readFileSync } from 'node:fs';
import { CONFIG_VARIABLES } from '@wx-kf/shared';
import { describe, expect, it } from 'vitest';

const read = (file: string) => readFileSync(new URL(`../${file}`, import.meta.url), 'utf8');

describe('docs match the code', () => {
  it('.env.example lists every configuration variable, and nothing else', () => {
    const listed = [...read('.env.example').matchAll(/^#?\s?([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]);
    expect(new Set(listed)).toEqual(new Set(CONFIG_VARIABLES));
  });

  it('the README documents every configuration variable and every root command', () => {
    const readme = read('README.md');
    for (const name of CONFIG_VARIABLES) expect(readme, name).toContain(`\`${name}\``);
    const scripts = Object.keys(JSON.parse(read('package.json')).scripts as Record<string, string>);
    for (const script of scripts) expect(readme, script).toContain(`pnpm ${script}`);
  });
});
