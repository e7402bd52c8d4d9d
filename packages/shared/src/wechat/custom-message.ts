import { z } from 'zod';
import { MessageFormatError } from './errors.js';

/** `miniprogram` covers Mini Programs and Mini Games; `officialaccount` covers subscription and service accounts. */
export type AccountType = 'miniprogram' | 'officialaccount';

const text = z.string().min(1);
const optionalText = z.string().optional();

/**
 * A reference to media: a WeChat `media_id`, or (in reply rules only) a local `file` that the worker
 * uploads once and replaces with its media_id.
 */
function mediaRef<K extends 'media_id' | 'thumb_media_id'>(idField: K, allowFile: boolean) {
  const byId = z.object({ [idField]: text } as Record<K, typeof text>);
  return allowFile ? z.union([byId, z.object({ file: text })]) : byId;
}

function schemas(allowFile: boolean) {
  const kf = { customservice: z.strictObject({ kf_account: text }).optional() };
  const mpPage = z.object({ title: text, pagepath: text }).and(mediaRef('thumb_media_id', allowFile));
  const common = {
    text: z.strictObject({ msgtype: z.literal('text'), text: z.strictObject({ content: text }) }),
    image: z.strictObject({ msgtype: z.literal('image'), image: mediaRef('media_id', allowFile) }),
  };
  const miniprogram = z.discriminatedUnion('msgtype', [
    common.text,
    common.image,
    z.strictObject({
      msgtype: z.literal('link'),
      link: z.strictObject({ title: text, description: text, url: z.url(), thumb_url: z.url() }),
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
        .and(z.object({ thumb_media_id: text })),
      ...kf,
    }),
    z.strictObject({
      msgtype: z.literal('music'),
      music: z
        .object({ title: optionalText, description: optionalText, musicurl: z.url(), hqmusicurl: z.url() })
        .and(mediaRef('thumb_media_id', allowFile)),
      ...kf,
    }),
    z.strictObject({
      msgtype: z.literal('news'),
      news: z.strictObject({
        // WeChat answers 45008 for more than one article.
        articles: z
          .array(z.strictObject({ title: text, description: optionalText, url: z.url(), picurl: z.url().optional() }))
          .length(1),
      }),
      ...kf,
    }),
    z.strictObject({ msgtype: z.literal('mpnews'), mpnews: z.strictObject({ media_id: text }), ...kf }),
    z.strictObject({ msgtype: z.literal('mpnewsarticle'), mpnewsarticle: z.strictObject({ article_id: text }), ...kf }),
    z.strictObject({
      msgtype: z.literal('msgmenu'),
      msgmenu: z.strictObject({
        head_content: optionalText,
        list: z.array(z.strictObject({ id: text, content: text })).min(1),
        tail_content: optionalText,
      }),
      ...kf,
    }),
    z.strictObject({ msgtype: z.literal('wxcard'), wxcard: z.strictObject({ card_id: text }), ...kf }),
    z.strictObject({
      msgtype: z.literal('miniprogrampage'),
      miniprogrampage: mpPage.and(z.object({ appid: text })),
      ...kf,
    }),
  ]);
  return { miniprogram, officialaccount };
}

const sendable = schemas(false);
const templates = schemas(true);

export type MiniProgramReply = z.infer<typeof sendable.miniprogram>;
export type OfficialAccountReply = z.infer<typeof sendable.officialaccount>;
/** One custom/send body without `touser`: what a rule or handler returns and what the worker sends. */
export type ReplyItem = MiniProgramReply | OfficialAccountReply;
/** A custom/send request body. */
export type CustomMessage = ReplyItem & { touser: string };

/** The message types each account kind may send through custom/send. */
export const SENDABLE_TYPES: Record<AccountType, readonly string[]> = {
  miniprogram: sendable.miniprogram.options.map((o) => o.shape.msgtype.value),
  officialaccount: sendable.officialaccount.options.map((o) => o.shape.msgtype.value),
};

function describe(error: z.ZodError): string {
  return error.issues
    .map((issue) => (issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message))
    .join('; ');
}

function check(schema: z.ZodType, value: unknown, accountType: AccountType): unknown {
  const msgtype = (value as { msgtype?: unknown } | null)?.msgtype;
  if (typeof msgtype === 'string' && !SENDABLE_TYPES[accountType].includes(msgtype)) {
    throw new MessageFormatError(
      `msgtype "${msgtype}" cannot be sent by a ${accountType} (allowed: ${SENDABLE_TYPES[accountType].join(', ')})`,
    );
  }
  const result = schema.safeParse(value);
  if (!result.success) throw new MessageFormatError(describe(result.error));
  return result.data;
}

/** Validates a reply item (no `touser`, `media_id` required) for this account kind; throws MessageFormatError. */
export function validateReply(item: unknown, accountType: AccountType): ReplyItem {
  return check(sendable[accountType], item, accountType) as ReplyItem;
}

/** Like validateReply, but a media field may be `{ file }` (reply rules: uploaded by the worker). */
export function validateReplyTemplate(item: unknown, accountType: AccountType): unknown {
  return check(templates[accountType], item, accountType);
}

/** The custom/send body for one user. */
export function toCustomMessage(touser: string, item: ReplyItem): CustomMessage {
  return { touser, ...item };
}

/** Typed builders for reply items, one per msgtype. */
export const reply = {
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
