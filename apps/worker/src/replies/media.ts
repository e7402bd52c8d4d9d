import { FILE_MEDIA, type WeChatClient } from '@wx-kf/shared/api';
import type { ReplyTemplate } from '@wx-kf/shared/rules';

/** True when a rules reply names a media file (resolved inside the media folder when the rules were loaded). */
export function hasFile(item: ReplyTemplate): boolean {
  const body = item[item.msgtype];
  return typeof body === 'object' && body !== null && 'file' in body;
}

/**
 * Replaces a rules reply's `{ file }` with the media_id of the uploaded file (uploaded once, then cached).
 * Only for templates of the loaded rules: job data never reaches here, so a job cannot name a file.
 */
export async function resolveMedia(
  client: WeChatClient,
  appId: string,
  item: ReplyTemplate,
  options: { fresh?: boolean } = {},
): Promise<ReplyTemplate> {
  const body = item[item.msgtype];
  if (typeof body !== 'object' || body === null || !('file' in body)) return item;
  const kind = FILE_MEDIA[item.msgtype];
  if (!kind) throw new Error(`msgtype ${item.msgtype} cannot carry a file`);
  const { file, ...rest } = body;
  // A rules file's `file` is a path, resolved and checked when the rules were loaded.
  if (typeof file !== 'string') throw new Error(`msgtype ${item.msgtype}: file is not a path`);
  const mediaId = await client.uploadTempMedia(appId, kind.type, file, options);
  return { ...item, [item.msgtype]: { ...rest, [kind.field]: mediaId } };
}
