import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../config/errors.js';
import { loadStructuredFile } from '../config/file.js';
import { type AccountType, validateReplyTemplate } from '../wechat/custom-message.js';
import type { InboundMessage } from '../wechat/message.js';

/** A reply as written in a rules file: a custom/send body without touser, `{{Field}}` templates, `file` media. */
export type ReplyTemplate = Record<string, unknown> & { msgtype: string };

const when = z
  .strictObject({
    msgType: z.string().min(1).optional(),
    event: z.string().min(1).optional(),
    eventKey: z.string().optional(),
    contains: z.string().min(1).optional(),
    equals: z.string().optional(),
    regex: z
      .string()
      .refine((source) => {
        try {
          new RegExp(source, 'u');
          return true;
        } catch {
          return false;
        }
      }, 'is not a valid regular expression')
      .optional(),
  })
  .refine((w) => Object.keys(w).length > 0, 'needs at least one condition');

const replyList = z.array(z.looseObject({ msgtype: z.string() })).min(1);

const rulesSchema = z.strictObject({
  rules: z
    .array(
      z
        .strictObject({
          when,
          transfer: z.union([z.literal(true), z.strictObject({ kfAccount: z.string().min(1).optional() })]).optional(),
          reply: replyList.optional(),
        })
        .refine((r) => (r.transfer === undefined) !== (r.reply === undefined), 'needs exactly one of reply or transfer')
        .refine(
          (r) => r.transfer === undefined || (r.when.event === undefined && r.when.msgType !== 'event'),
          'events cannot be transferred to customer service',
        ),
    )
    .default([]),
  fallback: replyList.optional(),
});

type RulesFile = z.infer<typeof rulesSchema>;

interface Rule {
  when: RulesFile['rules'][number]['when'];
  regex?: RegExp;
  transfer?: { kfAccount?: string | undefined };
  reply?: ReplyTemplate[];
}

/** What to do with a message. */
export type Decision =
  | { kind: 'transfer'; kfAccount?: string | undefined }
  | { kind: 'reply'; replies: ReplyTemplate[] }
  | { kind: 'none' };

/** Compiled reply rules: the first rule that matches wins; otherwise the fallback, if any. */
export class ReplyRules {
  private constructor(
    private readonly rules: Rule[],
    private readonly fallback: ReplyTemplate[] | undefined,
  ) {}

  /** No rules at all: every message is stored and nothing is sent. */
  static readonly none = new ReplyRules([], undefined);

  /** Builds rules from parsed data (a rules file's content), checking every reply against the account kind. */
  static from(data: unknown, accountType: AccountType, source = 'rules'): ReplyRules {
    const result = rulesSchema.safeParse(data);
    if (!result.success) {
      throw new ConfigError(result.error.issues.map((i) => `${source}: ${i.path.join('.')}: ${i.message}`));
    }
    return ReplyRules.compile(result.data, accountType, source);
  }

  /** Loads and validates a JSON or YAML rules file; problems name the file, line and column. */
  static load(file: string, accountType: AccountType): ReplyRules {
    const data = loadStructuredFile(file, rulesSchema, 'REPLY_RULES_FILE');
    // A media `file` is relative to the rules file, wherever the process runs from.
    const absolute = (items: ReplyTemplate[] | undefined) => items?.map((i) => resolveFiles(i, dirname(resolve(file))));
    return ReplyRules.compile(
      {
        rules: data.rules.map((r) => ({ ...r, reply: absolute(r.reply as ReplyTemplate[] | undefined) })),
        fallback: absolute(data.fallback as ReplyTemplate[] | undefined),
      },
      accountType,
      file,
    );
  }

  private static compile(file: RulesFile, accountType: AccountType, source: string): ReplyRules {
    const problems: string[] = [];
    const checkReplies = (items: ReplyTemplate[] | undefined, where: string) => {
      items?.forEach((item, i) => {
        try {
          validateReplyTemplate(item, accountType);
        } catch (error) {
          problems.push(`${source}: ${where}.${i}: ${(error as Error).message}`);
        }
      });
    };
    const rules = file.rules.map((r, i): Rule => {
      checkReplies(r.reply as ReplyTemplate[] | undefined, `rules.${i}.reply`);
      return {
        when: r.when,
        ...(r.when.regex ? { regex: new RegExp(r.when.regex, 'u') } : {}),
        ...(r.transfer ? { transfer: r.transfer === true ? {} : r.transfer } : {}),
        ...(r.reply ? { reply: r.reply as ReplyTemplate[] } : {}),
      };
    });
    checkReplies(file.fallback as ReplyTemplate[] | undefined, 'fallback');
    if (problems.length > 0) throw new ConfigError(problems);
    return new ReplyRules(rules, file.fallback as ReplyTemplate[] | undefined);
  }

  /** True when some rule could transfer a message (the ingress only consults rules then). */
  get transfers(): boolean {
    return this.rules.some((r) => r.transfer);
  }

  /** The decision for a message: transfer, replies with templates filled in, or nothing. */
  decide(message: InboundMessage): Decision {
    for (const rule of this.rules) {
      const match = matchRule(rule, message);
      if (!match) continue;
      if (rule.transfer) return { kind: 'transfer', kfAccount: rule.transfer.kfAccount };
      return { kind: 'reply', replies: (rule.reply ?? []).map((r) => render(r, message, match)) };
    }
    if (this.fallback) return { kind: 'reply', replies: this.fallback.map((r) => render(r, message, [])) };
    return { kind: 'none' };
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

function resolveFiles<T>(value: T, dir: string): T {
  if (Array.isArray(value)) return value.map((v) => resolveFiles(v, dir)) as T;
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      k,
      k === 'file' && typeof v === 'string' ? resolve(dir, v) : resolveFiles(v, dir),
    ]),
  ) as T;
}

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_.]+)\s*\}\}/g;

/** Fills `{{Field}}` from the message and `{{match.N}}` from the regex groups, in every string of the reply. */
function render<T>(value: T, message: InboundMessage, match: string[]): T {
  if (typeof value === 'string') {
    return value.replace(PLACEHOLDER, (_all, name: string) => {
      if (name.startsWith('match.')) return match[Number(name.slice(6))] ?? '';
      const field = message[name];
      return typeof field === 'string' ? field : '';
    }) as T;
  }
  if (Array.isArray(value)) return value.map((v) => render(v, message, match)) as T;
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, render(v, message, match)])) as T;
  }
  return value;
}
