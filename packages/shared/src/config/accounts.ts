import type { z } from 'zod';
import { ConfigError } from './errors.js';
import { loadStructuredFile } from './file.js';
import { accountsFileSchema, type envSchema } from './schema.js';
import type { AccountConfig } from './types.js';

type Env = z.output<typeof envSchema>;

/** The accounts configured: the one of WECHAT_APP_ID and those of WECHAT_ACCOUNTS_FILE (problems noted). */
export function configuredAccounts(e: Env, problems: string[]): AccountConfig[] {
  const accounts: AccountConfig[] = [];
  if (e.WECHAT_APP_ID) {
    if (!e.WECHAT_APP_SECRET) problems.push('WECHAT_APP_SECRET: required with WECHAT_APP_ID');
    if (!e.WECHAT_TOKEN) problems.push('WECHAT_TOKEN: required with WECHAT_APP_ID');
    accounts.push({
      appId: e.WECHAT_APP_ID,
      appSecret: e.WECHAT_APP_SECRET ?? '',
      token: e.WECHAT_TOKEN ?? '',
      aesKey: e.WECHAT_AES_KEY,
      type: e.WECHAT_ACCOUNT_TYPE,
      security: e.WECHAT_SECURITY ?? (e.WECHAT_AES_KEY ? 'safe' : 'any'),
      handoff: e.WECHAT_HANDOFF,
    });
  }
  if (e.WECHAT_ACCOUNTS_FILE) {
    try {
      const file = loadStructuredFile(e.WECHAT_ACCOUNTS_FILE, accountsFileSchema, 'WECHAT_ACCOUNTS_FILE');
      for (const a of file.accounts) {
        const wecom = a.type === 'wecom-kf';
        if (wecom && a.security === 'any') problems.push(`account ${a.appId}: a wecom-kf account is always "safe"`);
        accounts.push({
          ...a,
          type: a.type ?? e.WECHAT_ACCOUNT_TYPE,
          // WeCom encrypts every callback: a wecom-kf account takes nothing else.
          security: wecom ? 'safe' : (a.security ?? e.WECHAT_SECURITY ?? (a.aesKey ? 'safe' : 'any')),
          handoff: a.handoff ?? e.WECHAT_HANDOFF,
          ...(a.ai ? { ai: { ...a.ai, baseUrl: a.ai.baseUrl?.replace(/\/+$/, '') } } : {}),
        });
      }
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems.push(...error.problems);
    }
  }
  if (accounts.length === 0 && problems.length === 0) {
    problems.push('no WeChat account: set WECHAT_APP_ID, WECHAT_APP_SECRET and WECHAT_TOKEN, or WECHAT_ACCOUNTS_FILE');
  }
  return accounts;
}

/** Notes what no account may be: configured twice, sharing a Token with a plaintext account, `safe` without a key. */
export function checkAccounts(accounts: readonly AccountConfig[], problems: string[]): void {
  const seen = new Set<string>();
  // A signature is sha1(token, timestamp, nonce): with one Token, one account's captured signature passes the
  // other's check too, and carries any body to it if it takes plaintext. Such an account needs its own Token.
  const tokens = new Map<string, AccountConfig>();
  for (const account of accounts) {
    if (seen.has(account.appId)) problems.push(`account ${account.appId}: configured twice`);
    seen.add(account.appId);
    const other = tokens.get(account.token);
    if (other && other.appId !== account.appId && (account.security === 'any' || other.security === 'any')) {
      problems.push(
        `account ${account.appId}: has the same Token as ${other.appId}, and one of them takes plaintext pushes; give each its own Token`,
      );
    }
    tokens.set(account.token, account);
    if (account.type === 'wecom-kf' && !account.aesKey) {
      problems.push(`account ${account.appId}: a wecom-kf account needs the callback's EncodingAESKey (aesKey)`);
    } else if (account.security === 'safe' && !account.aesKey) {
      problems.push(`account ${account.appId}: security "safe" needs an EncodingAESKey (aesKey / WECHAT_AES_KEY)`);
    }
  }
}
