import { ConfigError } from '../config/errors.js';
import type { Config } from '../config/index.js';
import type { AiAction } from './action.js';

/** One account's model endpoint and limits: the accounts file's `ai:` over the AI_* variables. */
export interface AiAccount {
  appId: string;
  baseUrl: string;
  /** Unset: no Authorization header. */
  apiKey?: string | undefined;
  /** The model when a rule names none. */
  model?: string | undefined;
  maxInFlight: number;
  /** Tokens per UTC day; 0 = no budget. */
  dailyTokens: number;
}

/**
 * The model settings of every account whose rules answer with `ai`, checked at start: each needs an endpoint
 * and, for each of its `ai` actions, a model. Throws ConfigError with one line per problem. An account with its
 * own `baseUrl` uses only its own `apiKey`: the global key never goes to another host.
 */
export function aiAccounts(
  config: Pick<Config, 'accounts' | 'ai'>,
  rules: ReadonlyMap<string, { aiActions: AiAction[] }>,
): Map<string, AiAccount> {
  const problems: string[] = [];
  const out = new Map<string, AiAccount>();
  for (const account of config.accounts) {
    const actions = rules.get(account.appId)?.aiActions ?? [];
    if (actions.length === 0) continue;
    const own = account.ai;
    const baseUrl = own?.baseUrl ?? config.ai.baseUrl;
    if (!baseUrl) {
      problems.push(
        `account ${account.appId}: its rules answer with ai, but no model endpoint is set: set AI_BASE_URL (or ai.baseUrl for this account in the accounts file)`,
      );
      continue;
    }
    const model = own?.model ?? config.ai.model;
    if (!model && actions.some((a) => !a.model)) {
      problems.push(
        `account ${account.appId}: an ai rule names no model: set AI_MODEL (or ai.model in the accounts file, or model: in the rule)`,
      );
      continue;
    }
    out.set(account.appId, {
      appId: account.appId,
      baseUrl,
      apiKey: own?.baseUrl ? own.apiKey : (own?.apiKey ?? config.ai.apiKey),
      model,
      maxInFlight: own?.maxInFlight ?? config.ai.maxInFlight,
      dailyTokens: own?.dailyTokens ?? config.ai.dailyTokens,
    });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out;
}
