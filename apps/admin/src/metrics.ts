import type { Conversations } from '@wx-kf/shared/conversation';
import { handoffCounter } from '@wx-kf/shared/handoff';
import { QUEUE_NAMES } from '@wx-kf/shared/queue';
import { type Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { StoredHandoffChanges } from './handoff-changes.js';
import type { Queues } from './queues.js';

const PAUSE_REASONS = ['quota', 'operator'] as const;

function queueMetrics(registry: Registry, queues: Queues, appIds: string[]): void {
  new Gauge({
    name: 'wxkf_queue_jobs',
    help: 'Jobs per queue and state',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      for (const [queue, counts] of Object.entries(await queues.stats())) {
        for (const [state, n] of Object.entries(counts)) if (typeof n === 'number') this.set({ queue, state }, n);
      }
    },
  });
  new Gauge({
    name: 'wxkf_queue_oldest_waiting_seconds',
    help: 'Age of the oldest waiting job per queue (alert when it grows: workers are not keeping up)',
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      for (const name of QUEUE_NAMES) this.set({ queue: name }, await queues.oldestWaitingAge(name));
    },
  });
  new Gauge({
    name: 'wxkf_account_paused',
    help: 'Whether an account’s sends are paused (1) and why: quota (45009, expires) or operator (until resumed)',
    labelNames: ['app_id', 'reason'],
    registers: [registry],
    async collect() {
      const pauses = await queues.pauses(appIds);
      for (const appId of appIds) {
        for (const reason of PAUSE_REASONS) {
          this.set({ app_id: appId, reason }, pauses.some((p) => p.appId === appId && p.reason === reason) ? 1 : 0);
        }
      }
    },
  });
}

/** `wxkf_open_windows`: users per account whose send window has not ended, read from Redis at each scrape. */
function windowMetrics(registry: Registry, conversations: Conversations, appIds: string[]): void {
  new Gauge({
    name: 'wxkf_open_windows',
    help: 'Users with a send window that has not ended, per account (sampled from Redis at each scrape)',
    labelNames: ['app_id'],
    registers: [registry],
    async collect() {
      for (const appId of appIds) this.set({ app_id: appId }, await conversations.openWindowCount(appId));
    },
  });
}

/**
 * The admin listener's own gauges (queues, pauses, open windows), read from Redis at each scrape and registered on
 * `registry`; the listener adds process metrics and the handoff counter.
 */
export function adminMetrics(registry: Registry, queues: Queues, conversations: Conversations, appIds: string[]): void {
  queueMetrics(registry, queues, appIds);
  windowMetrics(registry, conversations, appIds);
}

/** What /metrics serves and where operator handoffs are counted. */
export interface AdminRegistry {
  registry: Registry;
  handoffs: Counter<'app_id' | 'change' | 'reason'>;
  /** Run before each scrape: adds the queue CLI's handoff changes (counted in Redis) to `handoffs`. */
  refresh(): Promise<void>;
}

/**
 * The admin's gauges with the registries of the process hosting the listener (ingress and/or worker metrics):
 * process metrics once, and operator handoffs (the admin API's and the queue CLI's) in the host's
 * `wxkf_handoffs_total` when it has one (pnpm start), else in the listener's own.
 */
export function adminRegistry(
  hosted: Registry[],
  queues: Queues,
  conversations: Conversations,
  appIds: string[],
): AdminRegistry {
  const own = new Registry();
  adminMetrics(own, queues, conversations, appIds);
  if (!hosted.some((r) => r.getSingleMetric('process_cpu_user_seconds_total')))
    collectDefaultMetrics({ register: own });
  // Before the merge: a merged registry holds the metrics registered when it is made, not those added later.
  const handoffs = handoffCounter([own, ...hosted]);
  const cli = new StoredHandoffChanges(queues.connection, appIds, handoffs);
  return { registry: Registry.merge([own, ...hosted]), handoffs, refresh: () => cli.sync() };
}
