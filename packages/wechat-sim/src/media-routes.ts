import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { err } from './answers.js';
import type { CallGate } from './gate.js';
import { stringParam } from './json-body.js';
import type { SimState } from './state.js';
import { mediaUpload } from './upload.js';
import type { WeComState } from './wecom-state.js';

/** WeChat keeps temporary media 3 days. */
const MEDIA_TTL_MS = 3 * 24 * 3600_000;
const MEDIA_TYPES = ['image', 'voice', 'video', 'thumb'];
/** WeCom's media/upload (same path on its own origin) takes `file` instead of `thumb`. */
const WECOM_MEDIA_TYPES = ['image', 'voice', 'video', 'file'];

/**
 * Temporary media: `POST /cgi-bin/media/upload` (multipart, field `media`) and `GET /cgi-bin/media/get`. Upload
 * also takes a WeCom corp's access_token (WeCom's media/upload, on the simulator's one origin): the media is the
 * corp's, for kf/send_msg.
 */
export function mediaRoutes(app: FastifyInstance, state: SimState, gate: CallGate, wecom: WeComState): void {
  const uploader = async (req: FastifyRequest, reply: FastifyReply) => {
    const corp = wecom.checkAccessToken(stringParam(req.query, 'access_token'));
    if (!('corpId' in corp)) return { appId: await gate.authorise(req, reply), types: MEDIA_TYPES };
    const answered = await gate.intercept(req, reply, corp.corpId);
    return { appId: answered ? undefined : corp.corpId, types: WECOM_MEDIA_TYPES };
  };
  app.post('/cgi-bin/media/upload', async (req, reply) => {
    const { appId, types } = await uploader(req, reply);
    if (!appId) return reply;
    const type = stringParam(req.query, 'type') ?? '';
    if (!types.includes(type)) return err(40004, 'invalid media type');
    const upload = await mediaUpload(req);
    if ('errcode' in upload) return upload;
    const { data, filename } = upload;
    if (data.length === 0) return err(44001, 'empty media data');
    const mediaId = `SIM_MEDIA_${state.media.size + 1}_${Math.random().toString(36).slice(2, 10)}`;
    const createdAt = state.now();
    state.media.set(mediaId, { appId, type, data, filename, expiresAt: createdAt + MEDIA_TTL_MS });
    return { type, media_id: mediaId, created_at: Math.floor(createdAt / 1000) };
  });

  app.get('/cgi-bin/media/get', async (req, reply) => {
    const appId = await gate.authorise(req, reply);
    if (!appId) return reply;
    const media = state.media.get(stringParam(req.query, 'media_id') ?? '');
    if (!media || media.appId !== appId || state.now() >= media.expiresAt) return err(40007, 'invalid media_id');
    return reply
      .type('application/octet-stream')
      .header('content-disposition', `attachment; filename="${media.filename}"`)
      .send(media.data);
  });
}
