import { WeChatApiError } from '@wx-kf/shared/api';
import type { Conversations } from '@wx-kf/shared/conversation';
import type { Logger } from '@wx-kf/shared/log';
import { OPENID_PATTERN } from '@wx-kf/shared/openid';
import { type InboundJobData, type InboundResult, inboundJob } from '@wx-kf/shared/queue';
import { isRecord } from '@wx-kf/shared/record';
import { keyspaceOf, type RedisClient, replicaWaiter } from '@wx-kf/shared/redis';
import type { InboundMessage } from '@wx-kf/shared/wechat';
import { type PullDeps, type PullState, pull, type WeComClient } from '@wx-kf/shared/wecom';
import { type Job, type Queue, UnrecoverableError } from 'bullmq';
import type { PullMetrics } from '../wecom-metrics.js';
import { invalid } from './job-data.js';

export interface PullProcessorDeps {
  /** The configured wecom-kf accounts (CorpIDs): a notice for anything else is refused. */
  corps: ReadonlySet<string>;
  kf: WeComClient;
  state: PullState;
  redis: RedisClient;
  /** Every shard's inbound queue (index = shard): a pulled message goes to its customer's shard. */
  inbound: readonly Queue<InboundJobData>[];
  conversations: Conversations;
  historyMaxAgeMs: number;
  /** Renews an open handoff on a customer's message, as a WeChat push does (HANDOFF_IDLE_TIMEOUT_SECONDS). */
  handoffIdleMs: number;
  metrics: PullMetrics;
  logger: Logger;
  /** REDIS_DURABILITY: `replicated` waits for a replica of each customer shard a page wrote, before it is dropped. */
  durability?: 'local' | 'replicated' | undefined;
}

/** How long a page's store waits for replicas under REDIS_DURABILITY=replicated (as the ingress waits for a push). */
const REPLICA_WAIT_MS = 1000;

const text = (v: unknown) => (typeof v === 'string' ? v : undefined);

/** kf/sync_msg answers after which no retry of the notice would pull: 95004, the open_kfid does not exist. */
const FINAL_PULL_ERRCODES: ReadonlySet<number> = new Set([95004]);

/**
 * The messages of one page as inbound jobs, in order: each with its conversation state (window grant, order,
 * timeline; idempotent) just before its add, as the ingress stores a push. The job id is the msgid's: a page
 * stored twice (a crash before its cursor moved on, or before it was dropped) adds nothing the second time.
 */
function pageStore(d: PullProcessorDeps): PullDeps['store'] {
  const keys = keyspaceOf(d.redis);
  const replicated = d.durability === 'replicated' ? replicaWaiter(d.redis, REPLICA_WAIT_MS) : undefined;
  return async (corpId, messages) => {
    const receivedAt = Date.now();
    const shards = new Set(messages.map(({ message }) => keys.userShard(corpId, message.FromUserName)));
    const confirms = replicated ? [...shards].map((shard) => replicated(shard)) : [];
    // Issued in page order on one connection, so each customer's order list gets their messages in order.
    await Promise.all(messages.map(({ message, history }) => storeOne(d, keys, corpId, message, history, receivedAt)));
    // The page is dropped after this: its jobs must be where a failover keeps them (else the job fails and retries).
    await Promise.all(confirms.map((confirm) => confirm()));
  };
}

function storeOne(
  d: PullProcessorDeps,
  keys: ReturnType<typeof keyspaceOf>,
  corpId: string,
  message: InboundMessage,
  history: boolean,
  receivedAt: number,
) {
  const job = inboundJob(corpId, message, { mode: 'safe', format: 'json', receivedAt, history });
  const queue = d.inbound[keys.userShard(corpId, message.FromUserName)];
  if (!queue) throw new Error('no inbound queue for the customer’s shard');
  const customer = message.Origin === '3';
  return Promise.all([
    d.conversations.ingest(corpId, 'wecom-kf', job.opts.jobId, message, {
      receivedAt,
      handoffIdleMs: customer ? d.handoffIdleMs : undefined,
    }),
    queue.add(job.name, job.data, job.opts),
  ]);
}

/**
 * A WeCom pull notice's job (channel/wecom/pull.ts): pulls the open_kfid when no other job does, else counts
 * itself so that pull goes round once more. A notice for an account that is not a configured wecom-kf corp, or
 * without an open_kfid, fails at once (job data is not trusted).
 */
export function pullProcessor(d: PullProcessorDeps) {
  const keys = keyspaceOf(d.redis);
  const deps: PullDeps = {
    kf: d.kf,
    state: d.state,
    store: pageStore(d),
    historyMaxAgeMs: d.historyMaxAgeMs,
    onPage: (corpId, count, seconds) => {
      d.metrics.pages.inc({ app_id: corpId });
      d.metrics.messages.inc({ app_id: corpId }, count);
      d.metrics.pageSeconds.observe({ app_id: corpId }, seconds);
    },
    onSkipped: (corpId, raw) => {
      d.metrics.skipped.inc({ app_id: corpId });
      // One line per item, never its content: enough to find it in WeCom's records.
      const msgid = isRecord(raw) && typeof raw.msgid === 'string' ? raw.msgid.slice(0, 64) : undefined;
      d.logger.warn({ appId: corpId, msgid }, 'pulled item skipped: malformed, or names no customer');
    },
  };
  return async (job: Job<InboundJobData>): Promise<InboundResult> => {
    const corpId = text(job.data?.appId) ?? '';
    const message = job.data?.message ?? {};
    const openKfId = text(message.OpenKfId);
    if (!d.corps.has(corpId)) throw invalid('a pull notice for an account that is not a wecom-kf corp');
    if (!openKfId || !OPENID_PATTERN.test(openKfId)) throw invalid('a pull notice without an open_kfid');
    if (!job.id) throw invalid('the job has no id');
    // When the Token came, never later than now (job data is not trusted: a date ahead would pin its Token).
    const receivedAt = Number(job.data.receivedAt);
    const at = Number.isFinite(receivedAt) ? Math.min(receivedAt, Date.now()) : 0;
    const request = { corpId, openKfId, owner: job.id, token: text(message.Token), at };
    const queue = d.inbound[keys.userShard(corpId, openKfId)];
    // A holder whose job failed, completed or is gone pulls no more: this notice takes over.
    const holderGone = async (holder: string) =>
      ['failed', 'completed', 'unknown'].includes((await queue?.getJobState(holder)) ?? 'unknown');
    try {
      const outcome = await pull({ ...deps, holderGone }, request);
      d.metrics.pulls.inc({ app_id: corpId, result: outcome.action });
      if (outcome.action === 'joined') return outcome;
      if (outcome.action === 'lost') d.logger.warn({ appId: corpId, openKfId }, 'pull lost its lock to another');
      // WeCom answered for it: the catch-up pull visits it from now on (job data alone never adds an open_kfid).
      await d.state.remember(corpId, openKfId);
      if (message.CatchUp === '1' && outcome.late > 0) {
        // Messages no notice pulled in time (their callback lost, or its job failed): callbacks go astray.
        d.metrics.catchUpMessages.inc({ app_id: corpId }, outcome.late);
        const line = { appId: corpId, openKfId, messages: outcome.late };
        d.logger.warn(line, 'catch-up pull found messages no notice had pulled');
      }
      return { action: 'pulled', pages: outcome.pages, messages: outcome.messages };
    } catch (error) {
      d.metrics.pulls.inc({ app_id: corpId, result: 'failed' });
      // WeCom refused for good (95004: no such open_kfid): no retry would pull. Any other code is retried (12
      // tries over about 68 minutes): an unknown one may pass, and a notice is the only thing that pulls.
      if (error instanceof WeChatApiError && FINAL_PULL_ERRCODES.has(error.errcode)) {
        await d.state.forget(corpId, openKfId).catch(() => undefined);
        throw new UnrecoverableError(`${error.errcode} ${error.errmsg}`);
      }
      throw error;
    }
  };
}
