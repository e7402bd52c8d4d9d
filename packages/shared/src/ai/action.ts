import { readFileSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { z } from 'zod';
import type { ReplyTemplate } from '../rules/index.js';
import type { AccountType } from '../wechat/custom-message.js';

/** The system prompt when a rule gives none (the length budget and the hand-over tool are always added). */
export const DEFAULT_SYSTEM_PROMPT =
  "You are the customer-service assistant of this WeChat account. Answer the user's question briefly and " +
  "politely, in the user's language. If you do not know the answer, say so: never invent orders, prices, dates " +
  'or policies.';

/** What the user is told when the model hands them to a person and the rule says nothing (`handover`). */
export const DEFAULT_HANDOVER: ReplyTemplate[] = [
  { msgtype: 'text', text: { content: '正在为你转接人工客服，请稍候。A person will answer you shortly.' } },
];

/** The longest system prompt (`system` or `systemFile`) a rule may give, in bytes. */
export const SYSTEM_PROMPT_MAX_BYTES = 16 * 1024;

/** A rule's `ai:` action, checked and with its defaults (docs/ai.md lists them). */
export interface AiAction {
  /** The system prompt (from `system`, `systemFile`, or the default). */
  system: string;
  /** The model to ask; unset = the account's or AI_MODEL. */
  model?: string | undefined;
  /** Earlier entries of the conversation (user messages and messages sent to them) the model sees. */
  history: number;
  /** The most tokens the model may answer with (`max_tokens`). */
  maxTokens: number;
  /** Sends of the user's window kept for a human: the answer uses at most the sends left minus these. */
  reserve: number;
  /** Pass every message of the answer through WeChat's msg_sec_check (Mini Programs and Mini Games). */
  check: boolean;
  /** Sent instead of an answer when the model fails (or a limit, or the content check, stops it); unset = hand over. */
  onError?: ReplyTemplate[] | undefined;
  /** Sent when the model hands the user to a person (then the handoff opens). */
  handover: ReplyTemplate[];
}

/** Where the rules file lives (a `systemFile` is read inside its folder) and what the account is. */
export interface AiActionContext {
  accountType: AccountType;
  mediaDir: string | undefined;
}

/** Reads a `systemFile` inside the rules file's folder, or says why it cannot be used. */
function readSystemFile(file: string, dir: string | undefined): { text?: string; problem?: string } {
  if (!dir) return { problem: 'systemFile is only allowed in a rules file (relative to its folder)' };
  try {
    const root = realpathSync(dir);
    const real = realpathSync(resolve(dir, file));
    const rel = relative(root, real);
    // Symlinks resolved first: a link pointing out of the folder is outside too.
    if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
      return { problem: `systemFile ${JSON.stringify(file)} is outside the rules file's folder` };
    }
    const stat = statSync(real);
    if (!stat.isFile()) return { problem: `systemFile ${JSON.stringify(file)} is not a regular file` };
    if (stat.size > SYSTEM_PROMPT_MAX_BYTES) {
      return { problem: `systemFile ${JSON.stringify(file)} is over ${SYSTEM_PROMPT_MAX_BYTES} bytes` };
    }
    const text = readFileSync(real, 'utf8').trim();
    return text ? { text } : { problem: `systemFile ${JSON.stringify(file)} is empty` };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    return { problem: `systemFile ${JSON.stringify(file)} cannot be read (${code})` };
  }
}

/**
 * The schema of a rule's `ai:` action (and of `fallback: { ai: … }`), given the schema of one reply (`item`, as
 * in `reply:`, for `onError` and `handover`).
 */
export function aiActionSchema(item: z.ZodType<ReplyTemplate>, c: AiActionContext): z.ZodType<AiAction> {
  const replies = z.array(item).min(1).max(5);
  return z
    .strictObject({
      system: z
        .string()
        .trim()
        .min(1)
        .refine((s) => Buffer.byteLength(s) <= SYSTEM_PROMPT_MAX_BYTES, `at most ${SYSTEM_PROMPT_MAX_BYTES} bytes`)
        .optional(),
      systemFile: z.string().min(1).optional(),
      model: z.string().min(1).max(200).optional(),
      history: z.number().int().min(0).max(100).default(10),
      maxTokens: z.number().int().min(16).max(100_000).default(1000),
      reserve: z.number().int().min(0).max(4).default(0),
      check: z
        .boolean()
        .refine((on) => !on || c.accountType === 'miniprogram', {
          message: 'check (msg_sec_check) is for Mini Programs and Mini Games only',
        })
        .default(false),
      onError: replies.optional(),
      handover: replies.optional(),
    })
    .refine((a) => a.system === undefined || a.systemFile === undefined, 'give system or systemFile, not both')
    .transform((a, ctx): AiAction => {
      let system = a.system ?? DEFAULT_SYSTEM_PROMPT;
      if (a.systemFile !== undefined) {
        const { text, problem } = readSystemFile(a.systemFile, c.mediaDir);
        if (problem) {
          ctx.addIssue({ code: 'custom', message: problem, path: ['systemFile'] });
          return z.NEVER;
        }
        system = text ?? system;
      }
      return {
        system,
        model: a.model,
        history: a.history,
        maxTokens: a.maxTokens,
        reserve: a.reserve,
        check: a.check,
        onError: a.onError,
        handover: a.handover ?? DEFAULT_HANDOVER,
      };
    });
}

/**
 * The fallback: replies, `ai` (the model with its defaults) or `{ ai: { … } }`. Chosen by the value's shape, so
 * a problem is reported inside the form meant (a union would only say "Invalid input").
 */
export function fallbackSchema<R, A>(replies: z.ZodType<R>, model: z.ZodType<{ ai: A }>) {
  return z.unknown().transform((value, ctx): R | { ai: A } => {
    const result = Array.isArray(value)
      ? replies.safeParse(value)
      : model.safeParse(value === 'ai' ? { ai: {} } : value);
    if (result.success) return result.data;
    for (const issue of result.error.issues) ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path });
    return z.NEVER;
  });
}
