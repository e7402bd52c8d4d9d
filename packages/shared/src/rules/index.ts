import { realpathSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { z } from 'zod';
import { type AiAction, aiActionSchema, fallbackSchema } from '../ai/action.js';
import { checkMediaFile, FILE_MEDIA } from '../api/media.js';
import { ConfigError } from '../config/errors.js';
import { loadStructuredFile } from '../config/file.js';
import type { Config } from '../config/index.js';
import { type AccountType, type FieldLimit, replyFieldLimit, validateReplyTemplate } from '../wechat/custom-message.js';
import type { InboundMessage } from '../wechat/message.js';

/**
 * A reply as written in a rules file: a custom/send body without touser, with `{{Field}}` templates. Media may be
 * `{ file }`: resolved and checked when the rules are loaded (the absolute path inside the media folder), and
 * uploaded by the worker from the loaded rules only — never from job data.
 */
export type ReplyTemplate = Record<string, unknown> & { msgtype: string };

/** The MsgType values WeChat pushes to a customer-service URL (Mini Programs and Official Accounts). */
export const MESSAGE_TYPES = [
  'text',
  'image',
  'voice',
  'video',
  'shortvideo',
  'location',
  'link',
  'miniprogrampage',
  'event',
] as const;

/** The Event values WeChat documents for these pushes; a rule naming another is refused (events are case-sensitive). */
export const KNOWN_EVENTS: ReadonlySet<string> = new Set([
  // Mini Program customer service
  'user_enter_tempsession',
  // Official Accounts: follows, scans, menus, location
  'subscribe',
  'unsubscribe',
  'SCAN',
  'LOCATION',
  'CLICK',
  'VIEW',
  'scancode_push',
  'scancode_waitmsg',
  'pic_sysphoto',
  'pic_photo_or_album',
  'pic_weixin',
  'location_select',
  'view_miniprogram',
  // customer-service sessions
  'kf_create_session',
  'kf_close_session',
  'kf_switch_session',
  // job results and subscription messages
  'TEMPLATESENDJOBFINISH',
  'MASSSENDJOBFINISH',
  'PUBLISHJOBFINISH',
  'subscribe_msg_popup_event',
  'subscribe_msg_change_event',
  'subscribe_msg_sent_event',
  // cards, verification, content checks
  'user_get_card',
  'user_del_card',
  'user_consume_card',
  'user_view_card',
  'user_enter_session_from_card',
  'card_pass_check',
  'card_not_pass_check',
  'qualification_verify_success',
  'qualification_verify_fail',
  'naming_verify_success',
  'naming_verify_fail',
  'annual_renew',
  'verify_expired',
  'wxa_media_check',
  'user_info_modified',
  'user_authorization_revoke',
]);

const short = (s: string) => JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);

const eventName = z
  .string()
  .min(1)
  .superRefine((name, ctx) => {
    if (KNOWN_EVENTS.has(name)) return;
    const near = [...KNOWN_EVENTS].find((e) => e.toLowerCase() === name.toLowerCase());
    ctx.addIssue({
      code: 'custom',
      message: near
        ? `unknown event ${short(name)}: events are case-sensitive (${short(near)})`
        : `unknown event ${short(name)} (the known ones are listed in the README, "Reply rules")`,
    });
  });

const when = z
  .strictObject({
    msgType: z.enum(MESSAGE_TYPES).optional(),
    event: eventName.optional(),
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
  .refine((w) => Object.keys(w).length > 0, 'needs at least one condition')
  // Conditions that can never hold together are a typo, not a rule.
  .refine(
    (w) =>
      w.msgType === undefined ||
      w.msgType === 'text' ||
      (w.contains === undefined && w.equals === undefined && w.regex === undefined),
    { message: 'contains, equals and regex match a text message: they need msgType text', path: ['msgType'] },
  )
  .refine((w) => w.msgType === undefined || w.msgType === 'event' || (w.event ?? w.eventKey) === undefined, {
    message: 'event and eventKey match events: they need msgType event (or no msgType)',
    path: ['msgType'],
  });

/** Where a rules file's media live, and what the account may send. */
interface CompileContext {
  accountType: AccountType;
  /** The media folder (the rules file's folder); without one, a `file` is refused. */
  mediaDir: string | undefined;
}

/** Resolves a reply's `file` inside the media folder and checks it (a regular file within WeChat's limit). */
function resolveMediaFile(file: string, type: keyof typeof FILE_MEDIA, mediaDir: string | undefined) {
  if (!mediaDir) return { problem: 'a file is only allowed in a rules file (relative to its folder)' };
  if (file.includes('{{')) return { problem: 'a file is a fixed path, not a template' };
  let root: string;
  let real: string;
  try {
    root = realpathSync(mediaDir);
    real = realpathSync(resolve(mediaDir, file));
  } catch (error) {
    return { problem: `${short(file)} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  // Symlinks are resolved first: a link inside the folder pointing outside it is outside too.
  const rel = relative(root, real);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    return { problem: `${short(file)} is outside the media folder ${root}` };
  }
  try {
    checkMediaFile(real, FILE_MEDIA[type]?.type ?? 'image');
  } catch (error) {
    return { problem: `${short(file)} ${(error as Error).message}` };
  }
  return { path: real };
}

/** One reply of a rules file: checked against the account kind, its `file` (if any) resolved and checked. */
function replyItem(c: CompileContext) {
  return z.looseObject({ msgtype: z.string() }).transform((raw, ctx): ReplyTemplate => {
    try {
      validateReplyTemplate(raw, c.accountType);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message.slice(0, 300) });
      return z.NEVER;
    }
    const body = raw[raw.msgtype] as Record<string, unknown> | undefined;
    if (typeof body?.file !== 'string') return raw;
    const { path, problem } = resolveMediaFile(body.file, raw.msgtype, c.mediaDir);
    if (problem) {
      ctx.addIssue({ code: 'custom', message: problem, path: [raw.msgtype, 'file'] });
      return z.NEVER;
    }
    return { ...raw, [raw.msgtype]: { ...body, file: path } };
  });
}

function rulesSchema(c: CompileContext) {
  const item = replyItem(c);
  const ai = aiActionSchema(item, c);
  return z.strictObject({
    rules: z
      .array(
        z
          .strictObject({
            when,
            transfer: z
              .union([z.literal(true), z.strictObject({ kfAccount: z.string().min(1).optional() })])
              .optional(),
            // An empty list is an explicit "no reply" (e.g. for events, which the fallback would answer).
            reply: z.array(item).optional(),
            ai: ai.optional(),
          })
          .refine(
            (r) => [r.transfer, r.reply, r.ai].filter((a) => a !== undefined).length === 1,
            'needs exactly one of reply, transfer or ai',
          )
          .refine(
            (r) => r.transfer === undefined || (r.when.event === undefined && r.when.msgType !== 'event'),
            'events cannot be transferred to customer service',
          ),
      )
      .default([]),
    fallback: fallbackSchema(z.array(item).min(1), z.strictObject({ ai })).optional(),
  });
}

type RulesFile = z.infer<ReturnType<typeof rulesSchema>>;

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
  const fill = (templates: ReplyTemplate[]) => templates.map((t) => render(t, [], message, match, new Set()));
  return {
    kind: 'ai',
    action,
    handover: fill(action.handover),
    ...(action.onError ? { onError: fill(action.onError) } : {}),
  };
}

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_.]+)\s*\}\}/g;

/** Renders templates for a message: the replies, and the names of the fields it lacked. */
function renderAll(templates: ReplyTemplate[], message: InboundMessage, match: string[]): Decision {
  const missing = new Set<string>();
  const replies = templates.map((t) => render(t, [], message, match, missing));
  return missing.size > 0 ? { kind: 'reply', replies, missing: [...missing] } : { kind: 'reply', replies };
}

/**
 * Fills `{{Field}}` from the message and `{{match.N}}` from the regex groups, in every string of the reply but
 * a `file` (a fixed path resolved at load: message content must never choose a file). `path` is where the
 * string sits in the reply, which says how long it may be.
 */
function render<T>(
  value: T,
  path: (string | number)[],
  message: InboundMessage,
  match: string[],
  missing: Set<string>,
): T {
  if (typeof value === 'string') return fill(value, replyFieldLimit(path), message, match, missing) as T;
  if (Array.isArray(value)) return value.map((v, i) => render(v, [...path, i], message, match, missing)) as T;
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, k === 'file' ? v : render(v, [...path, k], message, match, missing)]),
    ) as T;
  }
  return value;
}

/**
 * One template string filled in. The template itself was checked against the limit at load; the fields that
 * fill it are clipped so the result fits too (a user's long message must not make the reply unsendable): each
 * field gets an equal share of the room the template leaves, and what a shorter field does not use goes to the
 * others.
 */
function fill(template: string, limit: FieldLimit, message: InboundMessage, match: string[], missing: Set<string>) {
  // split() with a capturing pattern: literal text at even indices, field names at odd ones.
  const parts = template.split(PLACEHOLDER);
  if (parts.length === 1) return template;
  const values = parts.map((part, i) => {
    if (i % 2 === 0) return part;
    const field = part.startsWith('match.') ? match[Number(part.slice(6))] : message[part];
    if (typeof field === 'string' && field !== '') return field;
    missing.add(part);
    return '';
  });
  const fixed = values.filter((_, i) => i % 2 === 0).join('');
  const fields = values.filter((_, i) => i % 2 === 1);
  const shares = share(
    fields.map((f) => size(f, limit.unit)),
    limit.max - size(fixed, limit.unit),
  );
  let n = 0;
  return values.map((v, i) => (i % 2 === 0 ? v : clipTo(v, shares[n++] ?? 0, limit.unit))).join('');
}

const size = (s: string, unit: FieldLimit['unit']) => (unit === 'utf8' ? Buffer.byteLength(s, 'utf8') : s.length);

/** Splits `room` among fields of these sizes, smallest first: each takes what it needs, up to an equal share. */
function share(sizes: number[], room: number): number[] {
  const out = [...sizes];
  const order = sizes.map((need, i) => ({ need, i })).sort((a, b) => a.need - b.need);
  let left = Math.max(room, 0);
  for (const [k, { need, i }] of order.entries()) {
    const given = Math.min(need, Math.floor(left / (order.length - k)));
    out[i] = given;
    left -= given;
  }
  return out;
}

const MARK = '…';

/**
 * `value` cut to at most `max` (bytes of UTF-8 or UTF-16 code units) between two code points, so no character
 * or surrogate pair is split, and the cut marked with '…' when the mark fits.
 */
function clipTo(value: string, max: number, unit: FieldLimit['unit']): string {
  if (size(value, unit) <= max) return value;
  const mark = size(MARK, unit) <= max ? MARK : '';
  let room = max - size(mark, unit);
  let kept = '';
  for (const char of value) {
    room -= size(char, unit);
    if (room < 0) break;
    kept += char;
  }
  return kept + mark;
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
