import { z } from 'zod';
import { isRecord } from '../record.js';
import { MessageFormatError } from './errors.js';

/**
 * `miniprogram` covers Mini Programs and Mini Games; `officialaccount` covers subscription and service accounts;
 * `wecom-kf` is a WeCom customer-service corp (微信客服: the pull channel, channel/wecom).
 */
export type AccountType = 'miniprogram' | 'officialaccount' | 'wecom-kf';

/** WeChat's custom/send refuses a text longer than this (bytes of UTF-8). */
export const TEXT_CONTENT_MAX_BYTES = 2048;
/** Titles, descriptions, menu items, page paths (bytes of UTF-8): above what WeChat shows, below a memory problem. */
export const FIELD_MAX_BYTES = 1024;
/** media_id, thumb_media_id, card_id, appid, kf_account… (bytes of UTF-8): WeChat's are under 100 characters. */
export const ID_MAX_BYTES = 256;
/** URLs, in UTF-16 code units (string length). */
export const URL_MAX_LENGTH = 2048;

/** How long a string of a reply may be: `max` bytes of UTF-8, or `max` UTF-16 code units (URLs). */
export interface FieldLimit {
  max: number;
  unit: 'utf8' | 'utf16';
}
const URL_FIELDS = new Set(['url', 'thumb_url', 'picurl', 'musicurl', 'hqmusicurl']);
const ID_FIELDS = new Set(['media_id', 'thumb_media_id', 'card_id', 'appid', 'kf_account', 'article_id', 'id']);

/**
 * The limit the schemas below put on the string at `path` in a reply item (`['text', 'content']`,
 * `['news', 'articles', 0, 'url']`): what a rendered template must fit in to be sendable.
 */
export function replyFieldLimit(path: readonly (string | number)[]): FieldLimit {
  const key = String(path.at(-1));
  if (path[0] === 'text' && key === 'content') return { max: TEXT_CONTENT_MAX_BYTES, unit: 'utf8' };
  if (URL_FIELDS.has(key)) return { max: URL_MAX_LENGTH, unit: 'utf16' };
  return { max: ID_FIELDS.has(key) ? ID_MAX_BYTES : FIELD_MAX_BYTES, unit: 'utf8' };
}

/** A non-empty string of at most `max` UTF-8 bytes: every field is bounded, whoever sends it. */
const utf8 = (max: number) =>
  z
    .string()
    .min(1)
    .refine((s) => Buffer.byteLength(s, 'utf8') <= max, { message: `at most ${max} bytes` });
const text = utf8(FIELD_MAX_BYTES);
const optionalText = text.optional();
const id = utf8(ID_MAX_BYTES);
const url = z.url().max(URL_MAX_LENGTH);

/**
 * A reference to media: a WeChat `media_id`, or (in reply rules only) a local `file` that the worker
 * uploads once and replaces with its media_id.
 */
function mediaRef<K extends keyof typeof byId>(idField: K, allowFile: boolean) {
  return allowFile ? z.union([byId[idField], z.object({ file: text })]) : byId[idField];
}
const byId = { media_id: z.object({ media_id: id }), thumb_media_id: z.object({ thumb_media_id: id }) };

function schemas(allowFile: boolean) {
  const kf = { customservice: z.strictObject({ kf_account: id }).optional() };
  const mpPage = z.object({ title: text, pagepath: text }).and(mediaRef('thumb_media_id', allowFile));
  const common = {
    text: z.strictObject({
      msgtype: z.literal('text'),
      text: z.strictObject({ content: utf8(TEXT_CONTENT_MAX_BYTES) }),
    }),
    image: z.strictObject({ msgtype: z.literal('image'), image: mediaRef('media_id', allowFile) }),
  };
  const miniprogram = z.discriminatedUnion('msgtype', [
    common.text,
    common.image,
    z.strictObject({
      msgtype: z.literal('link'),
      link: z.strictObject({ title: text, description: text, url, thumb_url: url }),
    }),
    z.strictObject({ msgtype: z.literal('miniprogrampage'), miniprogrampage: mpPage }),
  ]);
  const officialaccount = z.discriminatedUnion('msgtype', [
    common.text.extend(kf),
    common.image.extend(kf),
    z.strictObject({ msgtype: z.literal('voice'), voice: mediaRef('media_id', allowFile), ...kf }),
    z.strictObject({
      msgtype: z.literal('video'),
      video: z
        .object({ title: optionalText, description: optionalText })
        .and(mediaRef('media_id', allowFile))
        .and(z.object({ thumb_media_id: id })),
      ...kf,
    }),
    z.strictObject({
      msgtype: z.literal('music'),
      music: z
        .object({ title: optionalText, description: optionalText, musicurl: url, hqmusicurl: url })
        .and(mediaRef('thumb_media_id', allowFile)),
      ...kf,
    }),
    z.strictObject({
      msgtype: z.literal('news'),
      news: z.strictObject({
        // WeChat answers 45008 for more than one article.
        articles: z
          .array(z.strictObject({ title: text, description: optionalText, url, picurl: url.optional() }))
          .length(1),
      }),
      ...kf,
    }),
    z.strictObject({ msgtype: z.literal('mpnews'), mpnews: z.strictObject({ media_id: id }), ...kf }),
    z.strictObject({ msgtype: z.literal('mpnewsarticle'), mpnewsarticle: z.strictObject({ article_id: id }), ...kf }),
    z.strictObject({
      msgtype: z.literal('msgmenu'),
      msgmenu: z.strictObject({
        head_content: optionalText,
        list: z
          .array(z.strictObject({ id, content: text }))
          .min(1)
          .max(20),
        tail_content: optionalText,
      }),
      ...kf,
    }),
    z.strictObject({ msgtype: z.literal('wxcard'), wxcard: z.strictObject({ card_id: id }), ...kf }),
    z.strictObject({
      msgtype: z.literal('miniprogrampage'),
      miniprogrampage: mpPage.and(z.object({ appid: id })),
      ...kf,
    }),
  ]);
  // kf/send_msg takes these with custom/send's shapes (its link, miniprogram and msgmenu differ: not offered).
  const wecom = z.discriminatedUnion('msgtype', [
    common.text,
    common.image,
    z.strictObject({ msgtype: z.literal('voice'), voice: mediaRef('media_id', allowFile) }),
  ]);
  return { miniprogram, officialaccount, 'wecom-kf': wecom };
}

const sendable = schemas(false);
const templates = schemas(true);

export type MiniProgramReply = z.infer<typeof sendable.miniprogram>;
export type OfficialAccountReply = z.infer<typeof sendable.officialaccount>;
export type WeComReply = z.infer<(typeof sendable)['wecom-kf']>;
/** One custom/send body without `touser`: what a rule or handler returns and what the worker sends. */
export type ReplyItem = MiniProgramReply | OfficialAccountReply;
/** A custom/send request body. */
export type CustomMessage = ReplyItem & { touser: string };

/** The message types each account kind may send through custom/send. */
export const SENDABLE_TYPES: Record<AccountType, readonly string[]> = {
  miniprogram: sendable.miniprogram.options.map((o) => o.shape.msgtype.value),
  officialaccount: sendable.officialaccount.options.map((o) => o.shape.msgtype.value),
  'wecom-kf': sendable['wecom-kf'].options.map((o) => o.shape.msgtype.value),
};

/** The first few issues, bounded: the reason goes back to API callers and into logs. */
function describe(error: z.ZodError): string {
  const reason = error.issues
    .slice(0, 3)
    .map((issue) => (issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message))
    .join('; ');
  return reason.length > 300 ? `${reason.slice(0, 299)}…` : reason;
}

function check<T>(schema: z.ZodType<T>, value: unknown, accountType: AccountType): T {
  const msgtype = isRecord(value) ? value.msgtype : undefined;
  if (typeof msgtype === 'string' && !SENDABLE_TYPES[accountType].includes(msgtype)) {
    const shown = msgtype.length > 32 ? `${msgtype.slice(0, 32)}…` : msgtype;
    throw new MessageFormatError(
      `msgtype "${shown}" cannot be sent by a ${accountType} (allowed: ${SENDABLE_TYPES[accountType].join(', ')})`,
    );
  }
  const result = schema.safeParse(value);
  if (!result.success) throw new MessageFormatError(describe(result.error));
  return result.data;
}

/**
 * Validates a reply item (no `touser`, `media_id` required, every field bounded) for this account kind and
 * returns it without unknown keys; throws MessageFormatError. The one check for anything not from a rules
 * file (the send API, job data): a `file` media source is never accepted here.
 */
export function validateReply(item: unknown, accountType: AccountType): ReplyItem {
  return check<ReplyItem>(sendable[accountType], item, accountType);
}

/** Like validateReply, but a media field may be `{ file }` (reply rules: uploaded by the worker). */
export function validateReplyTemplate(item: unknown, accountType: AccountType): unknown {
  return check<unknown>(templates[accountType], item, accountType);
}

/** The custom/send body for one user. */
export function toCustomMessage(touser: string, item: ReplyItem): CustomMessage {
  return { touser, ...item };
}

/** Typed builders for custom/send bodies (without touser), one per msgtype; handlers get them as `ctx.reply`. */
export const messageBuilders = {
  text: (content: string) => ({ msgtype: 'text', text: { content } }) as const,
  image: (mediaId: string) => ({ msgtype: 'image', image: { media_id: mediaId } }) as const,
  link: (link: { title: string; description: string; url: string; thumb_url: string }) =>
    ({ msgtype: 'link', link }) as const,
  miniprogrampage: (page: { title: string; pagepath: string; thumb_media_id: string; appid?: string }) =>
    ({ msgtype: 'miniprogrampage', miniprogrampage: page }) as const,
  voice: (mediaId: string) => ({ msgtype: 'voice', voice: { media_id: mediaId } }) as const,
  video: (video: { media_id: string; thumb_media_id: string; title?: string; description?: string }) =>
    ({ msgtype: 'video', video }) as const,
  music: (music: {
    musicurl: string;
    hqmusicurl: string;
    thumb_media_id: string;
    title?: string;
    description?: string;
  }) => ({ msgtype: 'music', music }) as const,
  news: (article: { title: string; url: string; description?: string; picurl?: string }) =>
    ({ msgtype: 'news', news: { articles: [article] } }) as const,
  mpnews: (mediaId: string) => ({ msgtype: 'mpnews', mpnews: { media_id: mediaId } }) as const,
  mpnewsarticle: (articleId: string) =>
    ({ msgtype: 'mpnewsarticle', mpnewsarticle: { article_id: articleId } }) as const,
  msgmenu: (menu: { list: { id: string; content: string }[]; head_content?: string; tail_content?: string }) =>
    ({ msgtype: 'msgmenu', msgmenu: menu }) as const,
  wxcard: (cardId: string) => ({ msgtype: 'wxcard', wxcard: { card_id: cardId } }) as const,
};

/** Adds `customservice.kf_account` (Official Accounts: send as this 客服 agent). */
export function asAgent<T extends object>(item: T, kfAccount: string): T & { customservice: { kf_account: string } } {
  return { ...item, customservice: { kf_account: kfAccount } };
}
