import type { FastifyRequest } from 'fastify';
import { err } from './answers.js';

/** The `media` file of a multipart upload, or WeChat's answer when there is none. */
export async function mediaUpload(
  req: FastifyRequest,
): Promise<{ data: Buffer; filename: string } | { errcode: number; errmsg: string }> {
  if (!req.isMultipart()) return err(41005, 'media data missing');
  const file = await req.file();
  if (!file) return err(41005, 'media data missing');
  if (file.fieldname !== 'media') return err(41005, 'media field missing');
  return { data: await file.toBuffer(), filename: file.filename };
}
