import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accountEnv } from '@wx-kf/shared/config';
import { isolatedRedisUrl, ServiceProcess } from '@wx-kf/testkit';
import { afterAll, describe, expect, it } from 'vitest';

// Issue 27: a missing or broken handler module was a level-60 JSON log with a stack; a rules file and a handler
// both set said nothing about which one answers what.
const account = {
  appId: 'wxhandlerstart001',
  appSecret: 'handler-start-secret',
  token: 'handlerStartToken',
  aesKey: 'HandlerStartProcessTestEncodingAESKey000000',
};
const dir = mkdtempSync(join(tmpdir(), 'wx-kf-handler-'));
const module = (name: string, text: string) => {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
};
const running: ServiceProcess[] = [];
afterAll(async () => {
  await Promise.all(running.map((p) => p.stop('SIGKILL')));
});

async function workerWith(env: NodeJS.ProcessEnv): Promise<{ code: number | null; lines: string[] }> {
  const worker = ServiceProcess.start('worker', {
    ...accountEnv(account),
    REDIS_URL: 'redis://127.0.0.1:9',
    WECHAT_API_BASE: 'http://127.0.0.1:9',
    ...env,
  });
  running.push(worker);
  const code = await worker.exited;
  return { code, lines: worker.output };
}

describe('a handler module at start', () => {
  it.each([
    ['missing', () => join(dir, 'missing.mjs'), /^worker: config: WECHAT_HANDLER: .*missing\.mjs: no such file/],
    [
      'with a syntax error',
      () => module('syntax.mjs', 'export default async (message => [\n'),
      /^worker: config: WECHAT_HANDLER: .*syntax\.mjs: the module does not load \(SyntaxError: /,
    ],
    [
      'throwing as it loads',
      () => module('throws.mjs', "throw new Error('no database');\nexport default async () => [];\n"),
      /^worker: config: WECHAT_HANDLER: .*throws\.mjs: the module does not load \(Error: no database\)$/,
    ],
    [
      'importing a package that is not installed',
      () => module('imports.mjs', "import 'no-such-package-wx-kf';\nexport default async () => [];\n"),
      /^worker: config: WECHAT_HANDLER: .*imports\.mjs: the module does not load \(Error: Cannot find package/,
    ],
    [
      'without a default export function',
      () => module('nodefault.mjs', 'export const handler = async () => [];\n'),
      /^worker: config: WECHAT_HANDLER: .*nodefault\.mjs: the module has no default export function/,
    ],
  ])('%s: one line and exit code 1', async (_label, path, line) => {
    const { code, lines } = await workerWith({ WECHAT_HANDLER: path() });
    expect(code).toBe(1);
    expect(lines, lines.join('\n')).toHaveLength(1);
    expect(lines[0]).toMatch(line);
  });

  it('with reply rules too: one start-up line says the handler answers and only the transfer rules act', async () => {
    const worker = ServiceProcess.start('worker', {
      ...accountEnv(account),
      REDIS_URL: await isolatedRedisUrl(),
      WECHAT_API_BASE: 'http://127.0.0.1:9',
      REPLY_RULES_FILE: 'examples/rules.yaml',
      WECHAT_HANDLER: module('ok.mjs', 'export default async () => [];\n'),
    });
    running.push(worker);
    await worker.waitFor('worker started');
    const said = worker.output.filter((l) => l.includes('replies: WECHAT_HANDLER'));
    expect(said).toHaveLength(1);
    expect(said[0]).toContain('examples/rules.yaml');
    expect(said[0]).toContain('only the transfer rules act, answered by the ingress');
    expect(await worker.stop('SIGTERM')).toBe(0);
  });
});
