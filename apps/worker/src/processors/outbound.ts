import {
  type Logger,
  type OutboundJobData,
  pauseKey,
  TokenUnavailableError,
  TransportError,
  toCustomMessage,
  WeChatApiError,
  type WeChatClient,
} from '@wx-kf/shared';
import { DelayedError, type Job, UnrecoverableError } from 'bullmq';
import type { Redis } from 'ioredis';
import type { WorkerMetrics } from '../metrics.js';
import { hasFile, resolveMedia } from '../replies/media.js';

/** How long an account's sending pauses after 45009 (daily quota reached); then one job probes again. */
export const QUOTA_PAUSE_MS = 15 * 60_000;

export interface OutboundDeps {
  client: WeChatClient;
  redis: Redis;
  logger: Logger;
  metrics: WorkerMetrics;
}

/**
 * Sends a job's replies in order. Progress (`sent`) is saved after each accepted reply, so a retry resumes
 * after the last one WeChat accepted. Retryable errors throw (BullMQ backs off with jitter); permanent ones
 * fail the job at once with `errcode errmsg`; a paused account or a token cool-down delays the job.
 */
export function outboundProcessor(deps: OutboundDeps) {
  const { client, redis, logger, metrics } = deps;

  const delay = async (job: Job<OutboundJobData>, token: string | undefined, ms: number, reason: string) => {
    metrics.retries.inc({ app_id: job.data.appId, reason });
    await job.moveToDelayed(Date.now() + ms, token);
    throw new DelayedError();
  };

  return async (job: Job<OutboundJobData>, token?: string): Promise<{ sent: number }> => {
    const { appId, touser, replies, msgKey } = job.data;
    const log = logger.child({ appId, msgKey, jobId: job.id });
    const paused = await redis.pttl(pauseKey(appId));
    if (paused > 0 || paused === -1) await delay(job, token, paused > 0 ? paused : 60_000, 'paused');

    for (let i = job.data.sent; i < replies.length; i++) {
      const template = replies[i] as Record<string, unknown>;
      try {
        try {
          await client.sendCustomMessage(appId, toCustomMessage(touser, await resolveMedia(client, appId, template)));
        } catch (error) {
          // A cached media_id that WeChat no longer knows: upload the file again, once.
          if (!(error instanceof WeChatApiError && error.action === 'reupload_media' && hasFile(template))) throw error;
          const fresh = await resolveMedia(client, appId, template, { fresh: true });
          await client.sendCustomMessage(appId, toCustomMessage(touser, fresh));
        }
      } catch (error) {
        if (error instanceof WeChatApiError) {
          metrics.sends.inc({ app_id: appId, errcode: String(error.errcode) });
          log.warn({ errcode: error.errcode, errmsg: error.errmsg, reply: i, action: error.action }, 'send refused');
          if (error.action === 'pause_account') {
            await redis.set(pauseKey(appId), `${error.errcode} ${error.errmsg}`, 'PX', QUOTA_PAUSE_MS);
            log.error({ errcode: error.errcode }, 'daily quota reached: sending paused for this account');
            await delay(job, token, QUOTA_PAUSE_MS, 'quota');
          }
          if (error.action === 'retry' || error.action === 'refresh_token') {
            metrics.retries.inc({ app_id: appId, reason: String(error.errcode) });
            throw error;
          }
          throw new UnrecoverableError(`${error.errcode} ${error.errmsg}`);
        }
        if (error instanceof TokenUnavailableError) await delay(job, token, error.retryAfterMs, 'token');
        if (error instanceof TransportError) {
          metrics.sends.inc({ app_id: appId, errcode: 'transport' });
          metrics.retries.inc({ app_id: appId, reason: error.kind });
          log.warn({ reply: i, kind: error.kind, err: error.message }, 'send failed in transport');
        }
        throw error;
      }
      metrics.sends.inc({ app_id: appId, errcode: '0' });
      // Progress matters only while replies remain; the job's completion records the last one.
      if (i + 1 < replies.length) await job.updateData({ ...job.data, sent: i + 1 });
    }
    log.info(
      {
        touser,
        replies: replies.length,
        latencyMs: job.data.receivedAt ? Date.now() - job.data.receivedAt : undefined,
      },
      'replies sent',
    );
    return { sent: replies.length };
  };
}
