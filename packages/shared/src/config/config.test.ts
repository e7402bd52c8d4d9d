import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, hasCredentials, loadConfig } from './index.js';

const AES = 'jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C';
const one = { WECHAT_APP_ID: 'wx5823bf96d3bd56c7', WECHAT_APP_SECRET: 'sec', WECHAT_TOKEN: 'tok123' };
const dir = mkdtempSync(join(tmpdir(), 'wx-kf-config-'));
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}
function problems(env: NodeJS.ProcessEnv): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const config = loadConfig(one);
    expect(config).toMatchObject({
      redisUrl: 'redis://127.0.0.1:6379',
      host: '0.0.0.0',
      port: 3000,
      apiBase: 'https://api.weixin.qq.com',
      timestampToleranceSeconds: 3600,
      tokenSource: 'stable',
      admin: { host: '127.0.0.1', port: 3001, user: 'admin' },
      logLevel: 'info',
    });
    expect(config.accounts).toEqual([
      {
        appId: one.WECHAT_APP_ID,
        appSecret: 'sec',
        token: 'tok123',
        aesKey: undefined,
        type: 'miniprogram',
        security: 'any',
      },
    ]);
    expect(config.admin.password).toBeUndefined();
  });

  it('reports every bad value on its own line', () => {
    expect(
      problems({ ...one, PORT: 'eighty', REDIS_URL: 'http://x', WECHAT_AES_KEY: 'short', TOKEN_SOURCE: 'magic' }),
    ).toEqual([
      expect.stringMatching(/^REDIS_URL: /),
      expect.stringMatching(/^PORT: /),
      expect.stringMatching(/^WECHAT_AES_KEY: must be the 43-character EncodingAESKey/),
      expect.stringMatching(/^TOKEN_SOURCE: /),
    ]);
  });

  it('says what is missing', () => {
    expect(problems({})).toEqual([expect.stringContaining('no WeChat account')]);
    expect(problems({ WECHAT_APP_ID: 'wx1' })).toEqual([
      'WECHAT_APP_SECRET: required with WECHAT_APP_ID',
      'WECHAT_TOKEN: required with WECHAT_APP_ID',
    ]);
    expect(problems({ ...one, WECHAT_SECURITY: 'safe' })).toEqual([expect.stringContaining('needs an EncodingAESKey')]);
  });

  it('reads many accounts from YAML or JSON, with defaults from the environment', () => {
    const yaml = file(
      'accounts.yaml',
      `accounts:\n  - appId: wxa\n    appSecret: s1\n    token: tokA\n    aesKey: ${AES}\n    security: safe\n  - appId: wxb\n    appSecret: s2\n    token: tokB\n    type: officialaccount\n`,
    );
    const config = loadConfig({ WECHAT_ACCOUNTS_FILE: yaml, WECHAT_ACCOUNT_TYPE: 'miniprogram' });
    expect(config.accounts.map((a) => [a.appId, a.type, a.security])).toEqual([
      ['wxa', 'miniprogram', 'safe'],
      ['wxb', 'officialaccount', 'any'],
    ]);
    const json = file('accounts.json', JSON.stringify({ accounts: [{ appId: 'wxc', appSecret: 's', token: 'tokC' }] }));
    expect(loadConfig({ WECHAT_ACCOUNTS_FILE: json }).accounts[0]?.appId).toBe('wxc');
  });

  it('points at the line of a bad value in the accounts file', () => {
    const path = file('bad.yaml', 'accounts:\n  - appId: wxa\n    appSecret: s1\n    token: t\n    aesKey: nope\n');
    expect(problems({ WECHAT_ACCOUNTS_FILE: path })).toEqual([
      `${path}:4:12: accounts.0.token: must be 3 to 32 letters or digits (the console Token)`,
      `${path}:5:13: accounts.0.aesKey: must be the 43-character EncodingAESKey ([A-Za-z0-9])`,
    ]);
    const broken = file('broken.yaml', 'accounts:\n  - appId: [wxa\n');
    expect(problems({ WECHAT_ACCOUNTS_FILE: broken })[0]).toMatch(new RegExp(`^${broken}:\\d+:\\d+: `));
    expect(problems({ WECHAT_ACCOUNTS_FILE: join(dir, 'missing.yaml') })).toEqual([
      `WECHAT_ACCOUNTS_FILE ${join(dir, 'missing.yaml')}: cannot be read (ENOENT)`,
    ]);
  });

  it('refuses the same AppID twice', () => {
    const path = file(
      'dup.json',
      JSON.stringify({ accounts: [{ appId: one.WECHAT_APP_ID, appSecret: 's', token: 'tokX' }] }),
    );
    expect(problems({ ...one, WECHAT_ACCOUNTS_FILE: path })).toEqual([
      `account ${one.WECHAT_APP_ID}: configured twice`,
    ]);
  });

  it('knows when to run the demo', () => {
    expect(hasCredentials({})).toBe(false);
    expect(hasCredentials(one)).toBe(true);
  });
});
