import type { HandoffReason } from '@wx-kf/shared/handoff';
import { keyspaceOf, type RedisClient } from '@wx-kf/shared/redis';
import type { Counter } from 'prom-client';

type HandoffCounter = Counter<'app_id' | 'change' | 'reason'>;

/**
 * Counts a handoff the queue CLI opened or closed, in Redis: its process is gone before any scrape, so the
 * admin listener reports it (StoredHandoffChanges).
 */
export async function recordHandoffChange(
  redis: RedisClient,
  appId: string,
  change: 'opened' | 'closed',
  reason: HandoffReason,
): Promise<void> {
  await redis.hincrby(keyspaceOf(redis).handoffChanges(appId), `${change} ${reason}`, 1);
}

/**
 * The queue CLI's handoff changes in the admin listener's `wxkf_handoffs_total`: each `sync` (before a scrape)
 * adds what the counts in Redis grew by since the last one. The first only notes where they stand, so a
 * restarted listener does not count the past again.
 */
export class StoredHandoffChanges {
  private seen: Map<string, number> | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly appIds: readonly string[],
    private readonly counter: HandoffCounter,
  ) {}

  async sync(): Promise<void> {
    const keys = keyspaceOf(this.redis);
    // Separate commands: on a cluster the accounts' keys sit in different slots.
    const hashes = await Promise.all(
      this.appIds.map(async (appId) => ({ appId, counts: await this.redis.hgetall(keys.handoffChanges(appId)) })),
    );
    const now = new Map<string, number>();
    for (const { appId, counts } of hashes) {
      for (const [field, n] of Object.entries(counts)) now.set(`${appId} ${field}`, Number(n) || 0);
    }
    const before = this.seen;
    this.seen = now;
    if (!before) return;
    for (const [id, n] of now) {
      const [appId, change, reason] = id.split(' ');
      const grew = n - (before.get(id) ?? 0);
      if (grew > 0 && appId && change && reason) this.counter.inc({ app_id: appId, change, reason }, grew);
    }
  }
}
