import { constants, statSync } from 'node:fs';
import { open } from 'node:fs/promises';

export type MediaType = 'image' | 'voice' | 'video' | 'thumb';

/** WeChat's size limits for temporary media (media/upload): anything larger is refused before it is read. */
const MEDIA_LIMITS: Record<MediaType, number> = {
  image: 10 * 1024 * 1024,
  voice: 2 * 1024 * 1024,
  video: 10 * 1024 * 1024,
  thumb: 64 * 1024,
};

/** Which media kind a `{ file }` stands for, by msgtype, and the field its media_id goes to. */
export const FILE_MEDIA: Record<string, { type: MediaType; field: 'media_id' | 'thumb_media_id' }> = {
  image: { type: 'image', field: 'media_id' },
  voice: { type: 'voice', field: 'media_id' },
  video: { type: 'video', field: 'media_id' },
  // The card's thumbnail of a Mini Program page uploads as an image.
  miniprogrampage: { type: 'image', field: 'thumb_media_id' },
  music: { type: 'thumb', field: 'thumb_media_id' },
};

const sizeText = (bytes: number) => (bytes >= 1024 * 1024 ? `${bytes / 1024 / 1024} MB` : `${bytes / 1024} kB`);

/** Why a file cannot be uploaded as this media type (not a regular file, or over WeChat's limit), or undefined. */
function mediaFileProblem(stat: { isFile(): boolean; size: number }, type: MediaType): string | undefined {
  if (!stat.isFile()) return 'is not a regular file';
  if (stat.size === 0) return 'is empty';
  if (stat.size > MEDIA_LIMITS[type])
    return `is larger than WeChat's ${sizeText(MEDIA_LIMITS[type])} limit for ${type}`;
  return undefined;
}

/** Checks a media file at start (stat only, never read); throws an Error saying why it cannot be uploaded. */
export function checkMediaFile(path: string, type: MediaType): void {
  const problem = mediaFileProblem(statSync(path), type);
  if (problem) throw new Error(problem);
}

/**
 * Reads a media file for upload: opened without following a final symlink and without blocking on a FIFO,
 * then checked by fstat (a regular file within the type's limit) before a single byte is read, so a device
 * like /dev/zero or a huge file is refused at once instead of filling memory.
 */
export async function readMediaFile(path: string, type: MediaType): Promise<Buffer> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const stat = await handle.stat();
    const problem = mediaFileProblem(stat, type);
    if (problem) throw new Error(`media file ${problem}`);
    // At most the size seen by fstat, even if the file grows meanwhile.
    const data = Buffer.alloc(stat.size);
    let filled = 0;
    while (filled < data.length) {
      const { bytesRead } = await handle.read(data, filled, data.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return data.subarray(0, filled);
  } finally {
    await handle.close();
  }
}
