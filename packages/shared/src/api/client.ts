import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { z } from 'zod';
import { keyspaceOf, type RedisClient } from '../redis/index.js';
import type { CustomMessage } from '../wechat/custom-message.js';
import { WeChatApiError } from './errors.js';
import { FormData, type WeChatHttp } from './http.js';
import { type MediaType, readMediaFile } from './media.js';
import type { TokenManager } from './token-manager.js';

/** media_ids live 3 days on WeChat's side; the cache forgets them well before. */
export const MEDIA_CACHE_TTL_MS = 2.5 * 24 * 3600_000;
const uploadAnswer = z.looseObject({ media_id: z.string() });

/** The WeChat API calls wx-kf makes, each with the cluster's shared token and one retry after a stale token. */
export class WeChatClient {
  private readonly uploads = new Map<string, Promise<string>>();

  constructor(
    private readonly http: WeChatHttp,
    private readonly tokens: TokenManager,
    private readonly redis: RedisClient,
  ) {}

  /** Calls with the current token; on 40001/40014/42001/41001 replaces that token once and retries once. */
  async withToken<T>(appId: string, call: (token: string) => Promise<T>): Promise<T> {
    const token = await this.tokens.getToken(appId);
    try {
      return await call(token);
    } catch (error) {
      if (!(error instanceof WeChatApiError) || error.action !== 'refresh_token') throw error;
      return call(await this.tokens.replace(appId, token));
    }
  }

  /** POST cgi-bin/message/custom/send. */
  async sendCustomMessage(appId: string, message: CustomMessage): Promise<void> {
    await this.withToken(appId, (token) =>
      this.http.call('/cgi-bin/message/custom/send', { query: { access_token: token }, json: message }),
    );
  }

  /** POST cgi-bin/message/custom/typing ("Typing" or "CancelTyping"). */
  async setTyping(appId: string, touser: string, typing: boolean): Promise<void> {
    await this.withToken(appId, (token) =>
      this.http.call('/cgi-bin/message/custom/typing', {
        query: { access_token: token },
        json: { touser, command: typing ? 'Typing' : 'CancelTyping' },
      }),
    );
  }

  /**
   * Uploads a file as temporary media and returns its media_id; the same content is uploaded once and its
   * media_id reused while valid (concurrent uploads of one file in a process share one request).
   * `fresh` skips the cache (after a 40007). The file must be a regular file within WeChat's limit for the
   * type (checked before it is read).
   */
  async uploadTempMedia(
    appId: string,
    type: MediaType,
    file: string,
    options: { fresh?: boolean } = {},
  ): Promise<string> {
    const data = await readMediaFile(file, type);
    const key = keyspaceOf(this.redis).media(appId, type, createHash('sha256').update(data).digest('hex'));
    const running = this.uploads.get(key);
    if (running) return running;
    const upload = this.upload(appId, type, file, data, key, options.fresh ?? false).finally(() =>
      this.uploads.delete(key),
    );
    this.uploads.set(key, upload);
    return upload;
  }

  private async upload(appId: string, type: MediaType, file: string, data: Buffer, key: string, fresh: boolean) {
    if (!fresh) {
      const cached = await this.redis.get(key);
      if (cached) return cached;
    }
    const answer = await this.withToken(appId, (token) => {
      const form = new FormData();
      form.append('media', new Blob([data]), basename(file));
      return this.http.call('/cgi-bin/media/upload', { query: { access_token: token, type }, form }, uploadAnswer);
    });
    await this.redis.set(key, answer.media_id, 'PX', MEDIA_CACHE_TTL_MS);
    return answer.media_id;
  }

  /** GET cgi-bin/media/get: the bytes of an incoming message's media. */
  async getTempMedia(appId: string, mediaId: string): Promise<Buffer> {
    return this.withToken(appId, (token) =>
      this.http.download('/cgi-bin/media/get', { query: { access_token: token, media_id: mediaId } }),
    );
  }
}
