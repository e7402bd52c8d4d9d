import type { GrantChange } from '../notify/events.js';
import { keyspaceOf, type RedisClient } from '../redis/index.js';
import type { Keyspace } from '../redis/keys.js';
import { defineScript, reply } from '../redis/scripts.js';

/** How long a mark outlives what made it: beyond a push's re-deliveries and a failed job's retention (7 days). */
export const GRANT_MARK_MS = 8 * 24 * 3600_000;

const pushScript = defineScript(
  'grant-push',
  ['grants', 'marks', 'job', 'dedup'],
  ['jobId', 'changes', 'fresh', 'now', 'keepMs'],
);
const takeScript = defineScript('grant-take', ['grants', 'marks'], ['template', 'holder', 'now', 'keepMs']);
const settleScript = defineScript('grant-settle', ['grants', 'marks'], ['op', 'template', 'holder']);

/** A grant asked for a notification: `taken` now, already `held` by this job (a retry), or `none` to take. */
export type GrantTake = 'taken' | 'held' | 'none';

/**
 * A user's subscribe-message grants per template, in Redis beside their window (the user's slot): each `accept`
 * in a pop-up adds one, a `reject` / `ban` or a change to reject clears them, a notification takes one before its
 * send (given back on a refusal, cleared on 43101). Every change is made once, whoever makes it and however often
 * it is tried: a push by its job id, a notification by its job id (docs/architecture.md, "Grants").
 */
export class Grants {
  private readonly keys: Keyspace;

  constructor(
    private readonly redis: RedisClient,
    private readonly now: () => number = Date.now,
  ) {
    this.keys = keyspaceOf(redis);
    for (const script of [pushScript, takeScript, settleScript]) script.register(redis);
  }

  private userKeys(appId: string, openid: string) {
    return { grants: this.keys.grants(appId, openid), marks: this.keys.grantMarks(appId, openid) };
  }

  /**
   * Applies a subscription push's changes once. `fresh` (the ingress, beside its store): not when the push was
   * stored before. Sends its script at once (no await before it), so a caller may pipeline it with others.
   * Resolves whether it applied them.
   */
  applyPush(
    appId: string,
    openid: string,
    jobId: string,
    changes: readonly GrantChange[],
    fresh: boolean,
  ): Promise<boolean> {
    const shard = this.keys.userShard(appId, openid);
    const keys = {
      ...this.userKeys(appId, openid),
      job: this.keys.inboundJob(shard, jobId),
      dedup: this.keys.inboundDedup(shard, jobId),
    };
    const args = {
      jobId,
      changes: changes.map((c) => `${c.templateId} ${c.change}`).join('\n'),
      fresh: fresh ? 1 : 0,
      now: this.now(),
      keepMs: GRANT_MARK_MS,
    };
    return pushScript(this.redis, keys, args).then((applied) => reply.int(applied) === 1);
  }

  /** Takes one grant of `template` for the notification job `holder` (idempotent per holder). */
  async take(appId: string, openid: string, template: string, holder: string): Promise<GrantTake> {
    const args = { template, holder, now: this.now(), keepMs: GRANT_MARK_MS };
    const [taken] = reply.list(await takeScript(this.redis, this.userKeys(appId, openid), args));
    const code = reply.int(taken);
    return code === 1 ? 'taken' : code === 2 ? 'held' : 'none';
  }

  /** Gives back the grant `holder` took (its send was refused, or never queued); nothing when it holds none. */
  async giveBack(appId: string, openid: string, template: string, holder: string): Promise<void> {
    await settleScript(this.redis, this.userKeys(appId, openid), { op: 'refund', template, holder });
  }

  /** Takes every grant of `template` away: WeChat said the user has none (43101). */
  async clear(appId: string, openid: string, template: string): Promise<void> {
    await settleScript(this.redis, this.userKeys(appId, openid), { op: 'clear', template, holder: '' });
  }

  /** The user's grants left, by template (templates with none left out). */
  async counts(appId: string, openid: string): Promise<Record<string, number>> {
    const hash = await this.redis.hgetall(this.keys.grants(appId, openid));
    const counts: Record<string, number> = {};
    for (const [template, n] of Object.entries(hash)) if (Number(n) > 0) counts[template] = Number(n);
    return counts;
  }
}
