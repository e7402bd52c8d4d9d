import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../config/errors.js';
import { loadConfig } from '../config/index.js';
import { ReplyRules } from '../rules/index.js';
import type { InboundMessage } from '../wechat/message.js';
import { DEFAULT_HANDOVER, DEFAULT_SYSTEM_PROMPT } from './action.js';
import { aiAccounts } from './settings.js';

const text = (Content: string) =>
  ({
    ToUserName: 'gh',
    FromUserName: 'o_u',
    CreateTime: '1714112445',
    MsgType: 'text',
    Content,
    MsgId: '1',
  }) as InboundMessage;
const say = (content: string) => [{ msgtype: 'text', text: { content } }];

function problems(load: () => unknown): string[] {
  try {
    load();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('the ai rule action', () => {
  it('answers with the model after the rules, with the documented defaults, its replies filled in', () => {
    const rules = ReplyRules.from(
      {
        rules: [
          { when: { equals: 'hello' }, reply: say('hi') },
          { when: { contains: '?' }, ai: { reserve: 1, onError: say('sorry {{FromUserName}}') } },
        ],
        fallback: 'ai',
      },
      'miniprogram',
    );
    expect(rules.decide(text('hello'))).toEqual({ kind: 'reply', replies: say('hi') });
    expect(rules.decide(text('why?'))).toEqual({
      kind: 'ai',
      action: {
        system: DEFAULT_SYSTEM_PROMPT,
        model: undefined,
        history: 10,
        maxTokens: 1000,
        reserve: 1,
        check: false,
        onError: say('sorry {{FromUserName}}'),
        handover: DEFAULT_HANDOVER,
      },
      onError: say('sorry o_u'),
      handover: DEFAULT_HANDOVER,
    });
    expect(rules.decide(text('anything')).kind).toBe('ai');
    expect(rules.usesAi).toBe(true);
    expect(rules.aiActions).toHaveLength(2);
    expect(ReplyRules.from({ fallback: say('x') }, 'miniprogram').usesAi).toBe(false);
  });

  it('reads systemFile inside the rules folder, and refuses what cannot be right, one line each', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wx-kf-ai-rules-'));
    writeFileSync(join(dir, 'prompt.txt'), 'You sell tea.\n');
    const file = join(dir, 'rules.yaml');
    writeFileSync(file, 'fallback: { ai: { systemFile: prompt.txt, model: qwen2.5 } }\n');
    const rules = ReplyRules.load(file, 'miniprogram');
    expect(rules.aiActions[0]).toMatchObject({ system: 'You sell tea.', model: 'qwen2.5' });

    writeFileSync(
      file,
      [
        'rules:',
        '  - when: { msgType: text }',
        '    ai: { check: true, reserve: 9 }',
        '    reply: []',
        '  - when: { msgType: image }',
        '    ai: { systemFile: ../../etc/passwd, system: x }',
        'fallback: { ai: { temperature: 1 } }',
      ].join('\n'),
    );
    expect(problems(() => ReplyRules.load(file, 'officialaccount'))).toEqual([
      `${file}:3:33: rules.0.ai.reserve: Too big: expected number to be <=4`,
      `${file}:3:18: rules.0.ai.check: check (msg_sec_check) is for Mini Programs and Mini Games only`,
      `${file}:2:5: rules.0: needs exactly one of reply, transfer or ai`,
      `${file}:6:9: rules.1.ai: give system or systemFile, not both`,
      `${file}:7:17: fallback.ai: Unrecognized key: "temperature"`,
    ]);
  });

  it('needs an endpoint and a model for every account whose rules use it (the accounts file overrides AI_*)', () => {
    const env = { WECHAT_APP_ID: 'wxai', WECHAT_APP_SECRET: 's', WECHAT_TOKEN: 'tok123' };
    const ai = new Map([['wxai', ReplyRules.from({ fallback: 'ai' }, 'miniprogram')]]);
    expect(problems(() => aiAccounts(loadConfig(env), ai))).toEqual([
      'account wxai: its rules answer with ai, but no model endpoint is set: set AI_BASE_URL (or ai.baseUrl for this account in the accounts file)',
    ]);
    expect(problems(() => aiAccounts(loadConfig({ ...env, AI_BASE_URL: 'http://127.0.0.1:11434/v1' }), ai))).toEqual([
      'account wxai: an ai rule names no model: set AI_MODEL (or ai.model in the accounts file, or model: in the rule)',
    ]);
    const config = loadConfig({ ...env, AI_BASE_URL: 'http://m/v1/', AI_MODEL: 'qwen', AI_API_KEY: 'sk-1' });
    expect(aiAccounts(config, ai).get('wxai')).toEqual({
      appId: 'wxai',
      baseUrl: 'http://m/v1',
      apiKey: 'sk-1',
      model: 'qwen',
      maxInFlight: 4,
      dailyTokens: 0,
    });
    expect(aiAccounts(config, new Map()).size).toBe(0);
    // Bad values: one line each, never the value.
    expect(
      problems(() => loadConfig({ ...env, AI_BASE_URL: 'ftp://x', AI_MAX_IN_FLIGHT: '0', AI_API_KEY: 'sk-secret' })),
    ).toEqual([
      'AI_BASE_URL: must be an http(s) URL, e.g. http://127.0.0.1:11434/v1',
      'AI_MAX_IN_FLIGHT: Too small: expected number to be >=1',
    ]);
  });

  it('an account with its own endpoint never gets the global key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wx-kf-ai-accounts-'));
    const accounts = join(dir, 'accounts.yaml');
    writeFileSync(
      accounts,
      [
        'accounts:',
        '  - { appId: wxown, appSecret: s, token: tok123, ai: { baseUrl: "http://own/v1", model: m, maxInFlight: 2 } }',
        '  - { appId: wxglobal, appSecret: s, token: tok456, ai: { dailyTokens: 5000 } }',
      ].join('\n'),
    );
    const config = loadConfig({
      WECHAT_ACCOUNTS_FILE: accounts,
      AI_BASE_URL: 'http://global/v1',
      AI_API_KEY: 'sk-g',
      AI_MODEL: 'g',
    });
    const rules = ReplyRules.from({ fallback: 'ai' }, 'miniprogram');
    const settings = aiAccounts(
      config,
      new Map([
        ['wxown', rules],
        ['wxglobal', rules],
      ]),
    );
    expect(settings.get('wxown')).toMatchObject({
      baseUrl: 'http://own/v1',
      apiKey: undefined,
      model: 'm',
      maxInFlight: 2,
    });
    expect(settings.get('wxglobal')).toMatchObject({ baseUrl: 'http://global/v1', apiKey: 'sk-g', dailyTokens: 5000 });
  });
});
