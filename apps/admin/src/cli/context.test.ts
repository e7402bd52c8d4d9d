import { describe, expect, it } from 'vitest';
import { CliConfig, CliError } from './context.js';

const ACCOUNT = { WECHAT_APP_ID: 'wxcliconfig000001', WECHAT_APP_SECRET: 'secret', WECHAT_TOKEN: 'tok123' };

describe('the queue CLI configuration', () => {
  it('passes on each warning of the configuration once, when it first loads', () => {
    const warnings: string[] = [];
    const config = new CliConfig({ ...ACCOUNT, HANDOFF_IDLE_TIMEOUT: '90' }, (w) => warnings.push(w));
    expect(warnings).toEqual([]); // nothing is read before a command needs it
    expect(config.get().handoff.idleMs).toBe(90_000);
    expect(config.ifLoads()?.accounts.map((a) => a.appId)).toEqual([ACCOUNT.WECHAT_APP_ID]);
    expect(warnings).toEqual([
      'HANDOFF_IDLE_TIMEOUT is deprecated: rename it HANDOFF_IDLE_TIMEOUT_SECONDS (same value); the old name goes in the next release',
    ]);
  });

  it('refuses in one line when the configuration does not load; ifLoads is undefined then', () => {
    const config = new CliConfig({}, () => {});
    expect(() => config.get()).toThrow(CliError);
    expect(() => config.get()).toThrow(/^cannot check --account: the configuration does not load \(.+\)$/);
    expect(config.ifLoads()).toBeUndefined();
  });
});
