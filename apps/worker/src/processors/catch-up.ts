import type { Logger } from '@wx-kf/shared/log';
import { OPENID_PATTERN } from '@wx-kf/shared/openid';
import { type InboundJobData, inboundJob } from '@wx-kf/shared/queue';
import { keyspaceOf, type RedisClient } from '@wx-kf/shared/redis';
import { catchUpNotice, type PullState } from '@wx-kf/shared/wecom';
import type { Queue } from 'bullmq';
import { repeat } from './repeat.js';

export interface CatchUpDeps {
  corps: ReadonlySet<string>;
  state: PullState;
  redis: RedisClient;
  /** Every shard's inbound queue (index = shard): a notice goes to its open_kfid's shard, as the ingress puts it. */
  inbound: readonly Queue<InboundJobData>[];
  /** WECOM_CATCHUP_SECONDS in ms (> 0). */
  everyMs: number;
  logger: Logger;
}

/**
 * One try: the next period is its retry (a notice's 12 tries would pile up while WeCom is down). Not kept once
 * done, and only the last 100 failed: they would crowd out the message jobs operators look at.
 */
const CATCH_UP_JOB_OPTIONS = { attempts: 1, removeOnComplete: true, removeOnFail: { count: 100 } };

/**
 * The safety net under WeCom's callbacks: every `everyMs`, each open_kfid a notice has named gets a notice job of
 * its own, so messages whose callback never came (the ingress unreachable for all of WeCom's tries, a notice job
 * that failed all of its own) are pulled anyway, within one period. Every worker runs it; the job's id names the
 * open_kfid and the period, so each period makes one job per open_kfid, tried once. A pull already running takes
 * it as one more round. Returns a stop function.
 */
export function startWeComCatchUp(d: CatchUpDeps): () => void {
  const keys = keyspaceOf(d.redis);
  const visit = async () => {
    const at = Date.now();
    const period = Math.floor(at / d.everyMs);
    for (const corpId of d.corps) {
      for (const openKfId of await d.state.known(corpId)) {
        if (!OPENID_PATTERN.test(openKfId)) continue; // the set is Redis data: checked again here
        const notice = catchUpNotice(corpId, openKfId, period, at);
        const job = inboundJob(corpId, notice, { mode: 'safe', format: 'xml', options: CATCH_UP_JOB_OPTIONS });
        await d.inbound[keys.userShard(corpId, openKfId)]?.add(job.name, job.data, job.opts);
      }
    }
  };
  return repeat(d.everyMs, visit, d.logger, 'WeCom catch-up pull could not be queued; the next period tries again');
}
