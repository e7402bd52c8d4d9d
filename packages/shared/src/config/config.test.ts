import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEDUP_TTL_MS } from '../queue/index.js';
import {
  ConfigError,
  hasCredentials,
  loadConfig,
  MAX_TIMESTAMP_TOLERANCE_SECONDS,
  RENAMED_VARIABLES,
  readConfig,
  redisFromEnv,
} from './index.js';

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
      redis: { kind: 'single', url: 'redis://127.0.0.1:6379', shards: 1, durability: 'local' },
      ingress: { host: '0.0.0.0', port: 3000, timestampToleranceSeconds: 300, metrics: undefined },
      worker: { concurrency: 50, lockMs: 30_000, typingAfterMs: 1000, metrics: undefined },
      admin: { host: '127.0.0.1', port: 3001, user: 'admin' },
      api: { base: 'https://api.weixin.qq.com', proxy: undefined, tokenSource: 'stable' },
      handoff: { idleMs: 30 * 60_000 },
      timeline: { entries: 200, maxAgeMs: 168 * 3600_000 },
      logLevel: 'info',
    });
    // A metrics listener is on loopback unless told otherwise.
    const metrics = loadConfig({ ...one, WORKER_METRICS_PORT: '9464', INGRESS_METRICS_PORT: '9463' });
    expect([metrics.worker.metrics, metrics.ingress.metrics]).toEqual([
      { host: '127.0.0.1', port: 9464 },
      { host: '127.0.0.1', port: 9463 },
    ]);
    expect(config.accounts).toEqual([
      {
        appId: one.WECHAT_APP_ID,
        appSecret: 'sec',
        token: 'tok123',
        aesKey: undefined,
        type: 'miniprogram',
        security: 'any',
        handoff: 'auto',
      },
    ]);
    expect(config.admin.password).toBeUndefined();
  });

  it('accepts only encrypted pushes for an account with an AES key unless told otherwise', () => {
    expect(loadConfig({ ...one, WECHAT_AES_KEY: AES }).accounts[0]?.security).toBe('safe');
    expect(loadConfig({ ...one, WECHAT_AES_KEY: AES, WECHAT_SECURITY: 'any' }).accounts[0]?.security).toBe('any');
    const accounts = file(
      'security.yaml',
      `accounts:\n  - { appId: wxa, appSecret: s, token: tok123, aesKey: ${AES} }\n` +
        `  - { appId: wxb, appSecret: s, token: tok456, aesKey: ${AES}, security: any }\n` +
        '  - { appId: wxc, appSecret: s, token: tok789 }\n',
    );
    expect(loadConfig({ WECHAT_ACCOUNTS_FILE: accounts }).accounts.map((a) => a.security)).toEqual([
      'safe',
      'any',
      'any',
    ]);
  });

  it('reads secrets from <NAME>_FILE, never both ways, and names an unreadable file without its content', () => {
    const secret = file('app-secret', 'from-a-file\n');
    const config = loadConfig({ ...one, WECHAT_APP_SECRET: '', WECHAT_APP_SECRET_FILE: secret });
    expect(config.accounts[0]?.appSecret).toBe('from-a-file');
    expect(problems({ ...one, WECHAT_APP_SECRET_FILE: secret })).toEqual([
      'WECHAT_APP_SECRET_FILE: set WECHAT_APP_SECRET or WECHAT_APP_SECRET_FILE, not both',
    ]);
    expect(problems({ ...one, ADMIN_PASSWORD_FILE: join(dir, 'missing') })).toEqual([
      `ADMIN_PASSWORD_FILE ${join(dir, 'missing')}: cannot be read (ENOENT)`,
    ]);
    const shortPassword = file('short-password', 'abc');
    expect(problems({ ...one, ADMIN_PASSWORD_FILE: shortPassword })).toEqual([
      'ADMIN_PASSWORD: must be at least 8 characters',
    ]);
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

  it('bounds the timestamp tolerance by how long stored pushes are remembered; 0 no longer turns it off', () => {
    // A replay is accepted up to the tolerance after its timestamp, the first delivery stored up to the tolerance
    // before it: the ingress must remember it (BullMQ de-duplication) that long, plus a clock margin.
    expect(2 * MAX_TIMESTAMP_TOLERANCE_SECONDS * 1000 + 60_000).toBeLessThan(DEDUP_TTL_MS);
    const tolerance = (env: NodeJS.ProcessEnv) => loadConfig({ ...one, ...env }).ingress.timestampToleranceSeconds;
    expect(tolerance({ WECHAT_TIMESTAMP_TOLERANCE_SECONDS: '1200' })).toBe(1200);
    expect(problems({ ...one, WECHAT_TIMESTAMP_TOLERANCE_SECONDS: '86400' })).toEqual([
      'WECHAT_TIMESTAMP_TOLERANCE_SECONDS: must be at most 1200 (how long a stored push is remembered bounds it)',
    ]);
    expect(problems({ ...one, WECHAT_TIMESTAMP_TOLERANCE_SECONDS: '0' })).toEqual([
      'WECHAT_TIMESTAMP_TOLERANCE_SECONDS: must be at least 1 (0 no longer turns the check off: see docs/configuration.md)',
    ]);
  });

  it('names every duration with its unit, and still reads an old name for one release with a warning', () => {
    expect(RENAMED_VARIABLES).toEqual({
      WECHAT_TIMESTAMP_TOLERANCE: 'WECHAT_TIMESTAMP_TOLERANCE_SECONDS',
      HANDOFF_IDLE_TIMEOUT: 'HANDOFF_IDLE_TIMEOUT_SECONDS',
    });
    // The new names, without a warning.
    const current = readConfig({
      ...one,
      WECHAT_TIMESTAMP_TOLERANCE_SECONDS: '60',
      HANDOFF_IDLE_TIMEOUT_SECONDS: '90',
    });
    expect([current.config.ingress.timestampToleranceSeconds, current.config.handoff.idleMs]).toEqual([60, 90_000]);
    expect(current.warnings).toEqual([]);
    // The old names: the same values, one warning line each naming the new name.
    const old = readConfig({ ...one, WECHAT_TIMESTAMP_TOLERANCE: '60', HANDOFF_IDLE_TIMEOUT: '90' });
    expect(old.config).toEqual(current.config);
    expect(old.warnings).toEqual([
      'WECHAT_TIMESTAMP_TOLERANCE is deprecated: rename it WECHAT_TIMESTAMP_TOLERANCE_SECONDS (same value); the old name goes in the next release',
      'HANDOFF_IDLE_TIMEOUT is deprecated: rename it HANDOFF_IDLE_TIMEOUT_SECONDS (same value); the old name goes in the next release',
    ]);
    // Both names at once: refused, one line, whatever the values.
    expect(problems({ ...one, HANDOFF_IDLE_TIMEOUT: '90', HANDOFF_IDLE_TIMEOUT_SECONDS: '90' })).toEqual([
      'HANDOFF_IDLE_TIMEOUT: renamed HANDOFF_IDLE_TIMEOUT_SECONDS; set only HANDOFF_IDLE_TIMEOUT_SECONDS, not both',
    ]);
    // A bad value under an old name: one line naming what was set and what it is now.
    expect(problems({ ...one, WECHAT_TIMESTAMP_TOLERANCE: '0' })).toEqual([
      'WECHAT_TIMESTAMP_TOLERANCE (now WECHAT_TIMESTAMP_TOLERANCE_SECONDS): must be at least 1 (0 no longer turns the check off: see docs/configuration.md)',
    ]);
    expect(problems({ ...one, HANDOFF_IDLE_TIMEOUT: 'half an hour' })).toEqual([
      expect.stringMatching(/^HANDOFF_IDLE_TIMEOUT \(now HANDOFF_IDLE_TIMEOUT_SECONDS\): [^\n]+$/),
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

  it("refuses one Token for two accounts when one takes plaintext: the other's captured signature would pass", () => {
    const path = file(
      'same-token.json',
      JSON.stringify({
        accounts: [
          { appId: 'wxsametoken00001', appSecret: 's', token: 'sharedTok1' },
          { appId: 'wxsametoken00002', appSecret: 's', token: 'sharedTok1' },
        ],
      }),
    );
    expect(problems({ WECHAT_ACCOUNTS_FILE: path })).toEqual([
      'account wxsametoken00002: has the same Token as wxsametoken00001, and one of them takes plaintext pushes; give each its own Token',
    ]);
    // Two accounts that take only encrypted pushes may share one: a signature alone opens nothing there.
    const safe = file(
      'same-token-safe.json',
      JSON.stringify({
        accounts: ['wxsametoken00001', 'wxsametoken00002'].map((appId) => ({
          appId,
          appSecret: 's',
          token: 'sharedTok1',
          aesKey: AES,
        })),
      }),
    );
    expect(loadConfig({ WECHAT_ACCOUNTS_FILE: safe }).accounts).toHaveLength(2);
  });

  it('knows when to run the demo', () => {
    expect(hasCredentials({})).toBe(false);
    expect(hasCredentials(one)).toBe(true);
  });
});

describe('Redis connection choices', () => {
  it('a cluster from REDIS_CLUSTER_NODES, 16 shards unless told otherwise', () => {
    const { redis } = loadConfig({ ...one, REDIS_CLUSTER_NODES: '10.0.0.1:7000, [::1]:7001,redis-2:7002' });
    expect(redis).toMatchObject({
      kind: 'cluster',
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '::1', port: 7001 },
        { host: 'redis-2', port: 7002 },
      ],
      shards: 16,
      durability: 'local',
    });
    expect(loadConfig({ ...one, REDIS_CLUSTER_NODES: 'a:1', REDIS_SHARDS: '3' }).redis.shards).toBe(3);
  });

  it('an empty REDIS_URL counts as unset: the default, or a cluster without deleting the line (issue 27)', () => {
    expect(loadConfig({ ...one, REDIS_URL: '' }).redis).toMatchObject({
      kind: 'single',
      url: 'redis://127.0.0.1:6379',
    });
    expect(loadConfig({ ...one, REDIS_URL: '', REDIS_CLUSTER_NODES: 'a:1' }).redis.kind).toBe('cluster');
    expect(redisFromEnv({ REDIS_URL: '', REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_NAME: 'm' }).kind).toBe(
      'sentinel',
    );
  });

  it('Sentinel from REDIS_SENTINELS and REDIS_SENTINEL_NAME, with passwords from files and TLS', () => {
    const password = file('redis-password', 'p4ss\n');
    const redis = redisFromEnv({
      REDIS_SENTINELS: 's1:26379,s2:26379',
      REDIS_SENTINEL_NAME: 'mymaster',
      REDIS_USERNAME: 'wxkf',
      REDIS_PASSWORD_FILE: password,
      REDIS_SENTINEL_PASSWORD: 'sentinel-pass',
      REDIS_TLS: 'true',
      REDIS_DURABILITY: 'replicated',
    });
    expect(redis).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26379 },
      ],
      name: 'mymaster',
      sentinelPassword: 'sentinel-pass',
      username: 'wxkf',
      password: 'p4ss',
      tls: { ca: undefined },
      shards: 1,
      durability: 'replicated',
    });
  });

  it('refuses two connection choices, a half-configured Sentinel and bad values, one line each', () => {
    const both = { ...one, REDIS_CLUSTER_NODES: 'a:1', REDIS_SENTINELS: 'b:2', REDIS_SENTINEL_NAME: 'm' };
    expect(problems(both)).toEqual(['REDIS_CLUSTER_NODES: set REDIS_CLUSTER_NODES or REDIS_SENTINELS, not both']);
    expect(problems({ ...one, REDIS_URL: 'redis://x:6379', REDIS_CLUSTER_NODES: 'a:1' })).toEqual([
      'REDIS_URL: set REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS, only one of them',
    ]);
    expect(problems({ ...one, REDIS_SENTINELS: 'b:2' })).toEqual([
      'REDIS_SENTINEL_NAME: required with REDIS_SENTINELS',
    ]);
    expect(problems({ ...one, REDIS_SENTINEL_NAME: 'm' })).toEqual([
      'REDIS_SENTINELS: required with REDIS_SENTINEL_NAME',
    ]);
    expect(
      problems({ ...one, REDIS_CLUSTER_NODES: 'a', REDIS_SHARDS: '0', REDIS_DURABILITY: 'sync', REDIS_TLS: 'maybe' }),
    ).toEqual([
      'REDIS_CLUSTER_NODES.0: must be host:port,host:port,… (IPv6 as [addr]:port)',
      'REDIS_TLS: Invalid option: expected one of "0"|"1"|"true"|"false"|"yes"|"no"',
      'REDIS_SHARDS: Too small: expected number to be >=1',
      'REDIS_DURABILITY: Invalid option: expected one of "local"|"replicated"',
    ]);
  });
});
