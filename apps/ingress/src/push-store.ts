import type { InboundJobData, inboundJob } from '@wx-kf/shared/queue';
import { type RedisClient, replicaWaiter, userShard } from '@wx-kf/shared/redis';
import { SignatureError } from '@wx-kf/shared/wechat';
import type { Queue } from 'bullmq';
import { signatureBinder } from './signature-binding.js';

/** Redis did not take the push in time (or at all): answered 503, so WeChat delivers it again. */
export class UnavailableError extends Error {
  override readonly name = 'UnavailableError';
}

/** Rejects with UnavailableError when `promise` takes longer than `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new UnavailableError(`redis did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** How long the ingress waits for a replica to confirm a push under REDIS_DURABILITY=replicated. */
const REPLICA_WAIT_MS = 1000;

export interface PushStoreOptions {
  /** The inbound queue of each shard (index = shard), on a producer connection (fails fast while Redis is down). */
  queues: readonly Queue<InboundJobData>[];
  redis: RedisClient;
  /** `replicated`: a push counts as stored only once a replica has it too (else 503). Default `local`. */
  durability?: 'local' | 'replicated';
  /** Longest wait for Redis before answering 503 (WeChat gives up after 5 s). */
  timeoutMs: number;
  timestampToleranceSeconds: number;
  /**
   * Writes the push's conversation state (send window, order, timeline) on `redis`, sent just before the add,
   * and says whether the push was stored before (from its job and de-duplication keys).
   */
  ingest: (job: ReturnType<typeof inboundJob>) => Promise<{ seen: boolean }>;
}

/** A plaintext push's signature and the raw body it came with, to bind them (see signature-binding.ts). */
export interface PlainSignature {
  appId: string;
  signature: string;
  timestamp: string | undefined;
  body: Buffer;
}

/**
 * Stores verified pushes: one job per message (BullMQ de-duplicates on the job id), each within the timeout.
 * Resolves whether the push was delivered before; throws SignatureError for a plaintext signature that came
 * with another body, UnavailableError for anything Redis did not do.
 */
export function pushStore(options: PushStoreOptions) {
  const { queues, redis, timeoutMs } = options;
  const bind = signatureBinder(redis, options.timestampToleranceSeconds);
  const replicated = options.durability === 'replicated' ? replicaWaiter(redis, REPLICA_WAIT_MS) : undefined;
  const store = async (job: ReturnType<typeof inboundJob>, plain?: PlainSignature): Promise<boolean> => {
    if (plain) await bind(plain.appId, plain.signature, plain.body, plain.timestamp);
    // The user's shard: their pushes keep their order and their keys share its slot.
    const shard = userShard(job.data.appId, job.data.message.FromUserName);
    const queue = queues[shard] as Queue<InboundJobData>;
    const confirm = replicated?.(shard);
    // Sent before the add on the same (auto-pipelined) connection, so it sees the keys as they were: whether
    // this push was delivered before. The same script writes the user's window grant, order and timeline (no
    // extra round trip; in Redis before `success`, so they never wait for a worker; idempotent). Its keys share
    // the user's tag, so the node that takes the job has them: `confirm` (WAIT) covers them too.
    const seen = options.ingest(job).then((r) => r.seen);
    const [wasSeen] = await Promise.all([seen, queue.add(job.name, job.data, job.opts)]);
    await confirm?.();
    return wasSeen;
  };
  return async (job: ReturnType<typeof inboundJob>, plain?: PlainSignature): Promise<{ duplicate: boolean }> => {
    try {
      return { duplicate: await withTimeout(store(job, plain), timeoutMs) };
    } catch (error) {
      if (error instanceof SignatureError || error instanceof UnavailableError) throw error;
      throw new UnavailableError((error as Error).message);
    }
  };
}

export type PushStore = ReturnType<typeof pushStore>;
