import { INBOUND_QUEUE, OUTBOUND_QUEUE, openQueue } from '../queue/index.js';
import { keyspaceOf, type RedisClient } from '../redis/index.js';
import { defineScript, reply } from '../redis/scripts.js';

const forgetScript = defineScript(
  'forget-user',
  ['window', 'order', 'timeline', 'context', 'handoff', 'answers', 'claim', 'rate', 'grants', 'marks', 'openWindows'],
  ['openid'],
);

/** What `forgetUser` erased: how much of each kind of thing kept about the user (0 = there was none). */
export interface Erasure {
  appId: string;
  openid: string;
  erased: {
    /** The send window (1 or 0). */
    window: number;
    /** Messages still in the user's order. */
    order: number;
    timelineEntries: number;
    /** Entries of the AI context (their texts and what was sent to them). */
    contextEntries: number;
    /** The handoff record (1 or 0). */
    handoff: number;
    /** Model answers stored for messages not yet fully sent. */
    storedAnswers: number;
    /** The per-user model rate counter and a model-call claim (each 1 or 0). */
    modelRate: number;
    modelClaim: number;
    /** Templates the user had subscribe-message grants of (their grants and marks go too). */
    grants: number;
    /** Queue jobs holding the user's messages or replies, found through the order and the timeline. */
    jobs: number;
  };
  /** Jobs being processed right now: not removed (they end and expire with the queue's retention). */
  jobsRunning: number;
}

/**
 * Erases everything wx-kf keeps about one user of one account (a user's right to deletion): the send window,
 * the order of their messages, the timeline, the AI context, the handoff, stored model answers, the model
 * limits' per-user keys, the subscribe-message grants (one script on the user's slot), their entries in the account's indexes, and the queue
 * jobs the order and timeline name (a job being processed is left to finish). Resolves what was erased.
 */
export async function forgetUser(redis: RedisClient, appId: string, openid: string): Promise<Erasure> {
  const keys = keyspaceOf(redis);
  forgetScript.register(redis);
  const shard = keys.userShard(appId, openid);
  const [counts, ids] = reply.list(
    await forgetScript(
      redis,
      {
        window: keys.sendWindow(appId, openid),
        order: keys.userOrder(appId, openid),
        timeline: keys.timeline(appId, openid),
        context: keys.aiContext(appId, openid),
        handoff: keys.handoff(appId, openid),
        answers: keys.aiAnswers(appId, openid),
        claim: keys.aiClaim(appId, openid),
        rate: keys.aiUserRate(appId, openid),
        grants: keys.grants(appId, openid),
        marks: keys.grantMarks(appId, openid),
        openWindows: keys.openWindows(appId, shard),
      },
      { openid },
    ),
  );
  const n = reply.list(counts).map((c) => reply.int(c));
  await redis.zrem(keys.handoffIndex(appId), openid);
  const { removed, running } = await removeJobs(redis, shard, reply.list(ids).map(reply.text));
  return {
    appId,
    openid,
    erased: {
      window: n[0] ?? 0,
      order: n[1] ?? 0,
      timelineEntries: n[2] ?? 0,
      contextEntries: n[3] ?? 0,
      handoff: n[4] ?? 0,
      storedAnswers: n[5] ?? 0,
      modelClaim: n[6] ?? 0,
      modelRate: n[7] ?? 0,
      grants: n[8] ?? 0,
      jobs: removed,
    },
    jobsRunning: running,
  };
}

/** Removes the named inbound jobs, their retry jobs and send-API jobs of that id from the user's shard. */
async function removeJobs(redis: RedisClient, shard: number, ids: string[]) {
  const inbound = openQueue(INBOUND_QUEUE, redis, shard);
  const outbound = openQueue(OUTBOUND_QUEUE, redis, shard);
  let removed = 0;
  let running = 0;
  try {
    for (const id of ids) {
      for (const [queue, jobId] of [
        [inbound, id],
        [outbound, id],
        [outbound, `${id}-r`],
      ] as const) {
        const state = await queue.getJobState(jobId);
        if (state === 'unknown') continue;
        // A job being processed is locked: BullMQ refuses to remove it.
        if (state !== 'active' && (await queue.remove(jobId)) === 1) removed++;
        else running++;
      }
    }
  } finally {
    await Promise.all([inbound.close(), outbound.close()]);
  }
  return { removed, running };
}
