import type { MediaType, ReplyItem, WeChatClient } from '@wx-kf/shared';

// Which media kind a `{ file }` stands for, by msgtype (thumbnails of MP pages upload as images).
const FILE_KIND: Record<string, { type: MediaType; field: 'media_id' | 'thumb_media_id' }> = {
  image: { type: 'image', field: 'media_id' },
  voice: { type: 'voice', field: 'media_id' },
  video: { type: 'video', field: 'media_id' },
  miniprogrampage: { type: 'image', field: 'thumb_media_id' },
  music: { type: 'thumb', field: 'thumb_media_id' },
};

/** True when the reply still names a local file instead of a media_id. */
export function hasFile(item: Record<string, unknown>): boolean {
  const body = item[item.msgtype as string];
  return typeof body === 'object' && body !== null && 'file' in body;
}

/** Replaces a reply's `{ file }` with the media_id of the uploaded file (uploaded once, then cached). */
export async function resolveMedia(
  client: WeChatClient,
  appId: string,
  item: Record<string, unknown>,
  options: { fresh?: boolean } = {},
): Promise<ReplyItem> {
  if (!hasFile(item)) return item as ReplyItem;
  const msgtype = item.msgtype as string;
  const kind = FILE_KIND[msgtype];
  if (!kind) throw new Error(`msgtype ${msgtype} cannot carry a file`);
  const { file, ...rest } = item[msgtype] as { file: string };
  const mediaId = await client.uploadTempMedia(appId, kind.type, file, options);
  return { ...item, [msgtype]: { ...rest, [kind.field]: mediaId } } as ReplyItem;
}
