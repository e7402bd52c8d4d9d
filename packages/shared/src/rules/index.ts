import { dirname, resolve } from 'node:path';
import type { AiAction } from '../ai/action.js';
import { ConfigError } from '../config/errors.js';
import { loadStructuredFile } from '../config/file.js';
import type { Config } from '../config/index.js';
import type { AccountType } from '../wechat/custom-message.js';
import type { InboundMessage } from '../wechat/message.js';
import { renderReply } from './render.js';
import { type ReplyTemplate, type RulesFile, rulesSchema } from './schema.js';

// The rules file by concern: its conditions (conditions.ts), its schema with the media it names (schema.ts), the
// templates filled in for a message (render.ts); here, the compiled rules and the decision they make.
export { KNOWN_EVENTS, MESSAGE_TYPES } from './conditions.js';
export type { ReplyTemplate } from './schema.js';

interface Rule {
  when: RulesFile['rules'][number]['when'];
  regex?: RegExp;
  transfer?: { kfAccount?: string | undefined };
  reply?: ReplyTemplate[];
  ai?: AiAction;
}

/** What answers a message no rule took: replies, or the model. */
type Fallback = ReplyTemplate[] | { ai: AiAction } | undefined;

/**
 * What to do with a message. For a reply, `missing` names the template fields the message did not have
 * (each filled in as empty): a reply that reads "收到：" for an image.
 */
export type Decision =
  | { kind: 'transfer'; kfAccount?: string | undefined }
  | { kind: 'reply'; replies: ReplyTemplate[]; missing?: string[] }
  | AiDecision
  | { kind: 'none' };

/** The model answers: the rule's action, with its `onError` and `handover` replies filled in for this message. */
export interface AiDecision {
  kind: 'ai';
  action: AiAction;
  onError?: ReplyTemplate[] | undefined;
  handover: ReplyTemplate[];
}

/** Compiled reply rules: the first rule that matches wins; otherwise the fallback, if any. */
export class ReplyRules {
  private constructor(
    private readonly rules: Rule[],
    private readonly fallback: Fallback,
  ) {}

  /** No rules at all: every message is stored and nothing is sent. */
  static readonly none = new ReplyRules([], undefined);

  /**
   * Builds rules from parsed data, checking every reply against the account kind; a `file` is resolved inside
   * `mediaDir` and refused without one.
   */
  static from(
    data: unknown,
    accountType: AccountType,
    options: { source?: string; mediaDir?: string } = {},
  ): ReplyRules {
    const result = rulesSchema({ accountType, mediaDir: options.mediaDir }).safeParse(data);
    if (!result.success) {
      const source = options.source ?? 'rules';
      throw new ConfigError(result.error.issues.map((i) => `${source}: ${i.path.join('.')}: ${i.message}`));
    }
    return ReplyRules.compile(result.data);
  }

  /**
   * Loads and validates a JSON or YAML rules file; every problem (syntax, an unknown condition value, a reply
   * the account cannot send, a media file outside the file's folder, missing or over WeChat's size limit)
   * names the file, line and column.
   */
  static load(file: string, accountType: AccountType): ReplyRules {
    const schema = rulesSchema({ accountType, mediaDir: dirname(resolve(file)) });
    return ReplyRules.compile(loadStructuredFile(file, schema, 'REPLY_RULES_FILE'));
  }

  private static compile(file: RulesFile): ReplyRules {
    const rules = file.rules.map(
      (r): Rule => ({
        when: r.when,
        ...(r.when.regex ? { regex: new RegExp(r.when.regex, 'u') } : {}),
        ...(r.transfer ? { transfer: r.transfer === true ? {} : r.transfer } : {}),
        ...(r.reply ? { reply: r.reply } : {}),
        ...(r.ai ? { ai: r.ai } : {}),
      }),
    );
    return new ReplyRules(rules, file.fallback);
  }

  /** True when some rule could transfer a message (the ingress only consults rules then). */
  get transfers(): boolean {
    return this.rules.some((r) => r.transfer);
  }

  /** Every `ai` action of these rules (and the fallback's): the worker checks each has a model to ask. */
  get aiActions(): AiAction[] {
    const actions = this.rules.flatMap((r) => (r.ai ? [r.ai] : []));
    return this.fallback && 'ai' in this.fallback ? [...actions, this.fallback.ai] : actions;
  }

  /** True when some rule (or the fallback) answers with the model. */
  get usesAi(): boolean {
    return this.aiActions.length > 0;
  }

  /** The decision for a message: transfer, replies with templates filled in, the model, or nothing. */
  decide(message: InboundMessage): Decision {
    for (const rule of this.rules) {
      const match = matchRule(rule, message);
      if (!match) continue;
      if (rule.transfer) return { kind: 'transfer', kfAccount: rule.transfer.kfAccount };
      if (rule.ai) return aiDecision(rule.ai, message, match);
      return renderAll(rule.reply ?? [], message, match);
    }
    if (!this.fallback) return { kind: 'none' };
    return 'ai' in this.fallback ? aiDecision(this.fallback.ai, message, []) : renderAll(this.fallback, message, []);
  }
}

/** The regex groups (or [] for a non-regex match) when the rule matches, else undefined. */
function matchRule(rule: Rule, m: InboundMessage): string[] | undefined {
  const w = rule.when;
  const isEvent = m.MsgType === 'event';
  if (rule.transfer && isEvent) return undefined;
  if (w.msgType !== undefined && w.msgType !== m.MsgType) return undefined;
  if (w.event !== undefined && (!isEvent || w.event !== m.Event)) return undefined;
  if (w.eventKey !== undefined && w.eventKey !== m.EventKey) return undefined;
  const content = typeof m.Content === 'string' ? m.Content : undefined;
  if (w.equals !== undefined && content !== w.equals) return undefined;
  if (w.contains !== undefined && !content?.includes(w.contains)) return undefined;
  if (rule.regex) {
    const groups = content === undefined ? null : rule.regex.exec(content);
    return groups ? [...groups].map((g) => g ?? '') : undefined;
  }
  return [];
}

/** The model's decision, its fixed replies rendered like any rule's (templates filled from the message). */
function aiDecision(action: AiAction, message: InboundMessage, match: string[]): AiDecision {
  const fill = (templates: ReplyTemplate[]) => templates.map((t) => renderReply(t, message, match, new Set()));
  return {
    kind: 'ai',
    action,
    handover: fill(action.handover),
    ...(action.onError ? { onError: fill(action.onError) } : {}),
  };
}

/** Renders templates for a message: the replies, and the names of the fields it lacked. */
function renderAll(templates: ReplyTemplate[], message: InboundMessage, match: string[]): Decision {
  const missing = new Set<string>();
  const replies = templates.map((t) => renderReply(t, message, match, missing));
  return missing.size > 0 ? { kind: 'reply', replies, missing: [...missing] } : { kind: 'reply', replies };
}

/** Each account's rules (its own file, else REPLY_RULES_FILE, else none), loaded and checked once. */
export function loadAccountRules(config: Pick<Config, 'accounts' | 'replyRulesFile'>): Map<string, ReplyRules> {
  return new Map(
    config.accounts.map((a) => {
      const file = a.replyRules ?? config.replyRulesFile;
      return [a.appId, file ? ReplyRules.load(file, a.type) : ReplyRules.none];
    }),
  );
}
