import { realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { z } from 'zod';
import { aiActionSchema, fallbackSchema } from '../ai/action.js';
import { checkMediaFile, FILE_MEDIA } from '../api/media.js';
import { isRecord } from '../record.js';
import { type AccountType, validateReplyTemplate } from '../wechat/custom-message.js';
import { quoted, whenSchema } from './conditions.js';

/**
 * A reply as written in a rules file: a custom/send body without touser, with `{{Field}}` templates. Media may be
 * `{ file }`: resolved and checked when the rules are loaded (the absolute path inside the media folder), and
 * uploaded by the worker from the loaded rules only — never from job data.
 */
export type ReplyTemplate = Record<string, unknown> & { msgtype: string };

/** Where a rules file's media live, and what the account may send. */
export interface CompileContext {
  accountType: AccountType;
  /** The media folder (the rules file's folder); without one, a `file` is refused. */
  mediaDir: string | undefined;
}

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

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
    const code = isRecord(error) && typeof error.code === 'string' ? error.code : 'error';
    return { problem: `${quoted(file)} cannot be read (${code})` };
  }
  // Symlinks are resolved first: a link inside the folder pointing outside it is outside too.
  const rel = relative(root, real);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    return { problem: `${quoted(file)} is outside the media folder ${root}` };
  }
  try {
    checkMediaFile(real, FILE_MEDIA[type]?.type ?? 'image');
  } catch (error) {
    return { problem: `${quoted(file)} ${messageOf(error)}` };
  }
  return { path: real };
}

/** One reply of a rules file: checked against the account kind, its `file` (if any) resolved and checked. */
function replyItem(c: CompileContext) {
  return z.looseObject({ msgtype: z.string() }).transform((raw, ctx): ReplyTemplate => {
    try {
      validateReplyTemplate(raw, c.accountType);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: messageOf(error).slice(0, 300) });
      return z.NEVER;
    }
    const body = raw[raw.msgtype];
    if (!isRecord(body) || typeof body.file !== 'string') return raw;
    const { path, problem } = resolveMediaFile(body.file, raw.msgtype, c.mediaDir);
    if (problem) {
      ctx.addIssue({ code: 'custom', message: problem, path: [raw.msgtype, 'file'] });
      return z.NEVER;
    }
    return { ...raw, [raw.msgtype]: { ...body, file: path } };
  });
}

/** A rules file's schema: its rules and fallback, every reply checked for `c`'s account and media folder. */
export function rulesSchema(c: CompileContext) {
  const item = replyItem(c);
  const ai = aiActionSchema(item, c);
  return z.strictObject({
    rules: z
      .array(
        z
          .strictObject({
            when: whenSchema,
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

export type RulesFile = z.infer<ReturnType<typeof rulesSchema>>;
