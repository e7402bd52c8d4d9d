import { errorMessage } from '@wx-kf/shared/log';
import type { InboundJobData, inboundJob } from '@wx-kf/shared/queue';
import { keyspaceOf, type RedisClient, replicaWaiter, whenWritable } from '@wx-kf/shared/redis';
import { annotate, inSpan } from '@wx-kf/shared/tracing';
import { SignatureError } from '@wx-kf/shared/wechat';
import type { Queue } from 'bullmq';
import type { SignatureBinder, SignatureUse } from './signature-binding.js';

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

const ignoreSignatureError = (error: unknown) => {
  if (!(error instanceof SignatureError)) throw error;
};

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
  /** Binds a request's `signature` to what it came with (signature-binding.ts). */
  bind: SignatureBinder;
  /**
   * Writes the push's conversation state (send window, order, timeline) on `redis`, sent just before the add,
   * unless the push was stored before (its job or de-duplication key exists): then it changes nothing and says
   * so. Resolves the user's handoff state too when asked for it.
   */
  ingest: (job: ReturnType<typeof inboundJob>, options: { handoff: boolean }) => Promise<Ingested>;
}

/** What comes with a push to store: its signature to bind, and whether to read the user's handoff state. */
export interface StoreOptions {
  signature?: SignatureUse | undefined;
  handoff?: boolean | undefined;
  /**
   * `false` when the message's sender is no user (a WeCom pull notice's FromUserName is an open_kfid): then no
   * send window, order or timeline is written (`ingest` is skipped), only whether it was stored before is read.
   * Default true.
   */
  conversation?: boolean | undefined;
}

/** What the ingest script found: whether the push was stored before, and the user's handoff state (raw). */
export interface Ingested {
  seen: boolean;
  handoff?: string | undefined;
}

/**
 * Stores verified pushes: one job per message (BullMQ de-duplicates on the job id), each within the timeout.
 * Resolves whether the push was delivered before; throws SignatureError for a signature that came with another
 * request, UnavailableError for anything Redis did not do.
 */
export function pushStore(options: PushStoreOptions) {
  const { queues, redis, timeoutMs, bind } = options;
  const keys = keyspaceOf(redis);
  const durability = options.durability ?? 'local';
  const replicated = options.durability === 'replicated' ? replicaWaiter(redis, REPLICA_WAIT_MS) : undefined;
  /** Whether the job or its de-duplication key exists (what `ingest` says too), for a message with no conversation. */
  const seenBefore = async (shard: number, jobId: string): Promise<Ingested> => ({
    seen: (await redis.exists(keys.inboundJob(shard, jobId), keys.inboundDedup(shard, jobId))) > 0,
  });
  const store = async (
    job: ReturnType<typeof inboundJob>,
    { signature, handoff, conversation }: StoreOptions,
  ): Promise<Ingested> => {
    await whenWritable(redis); // a connection still connecting at start is waited for, not failed (within the timeout)
    // An encrypted push is authenticated by msg_signature: its binding (which keeps its query from being reused)
    // goes out with the store. (A plaintext push's was bound before its body was parsed, by the route.)
    // If it was bound to another request first, that one was refused or came after the genuine push it copies.
    const binding = signature?.kind === 'aes' ? bind(signature).catch(ignoreSignatureError) : undefined;
    // The user's shard: their pushes keep their order and their keys share its slot.
    const shard = keys.userShard(job.data.appId, job.data.message.FromUserName);
    const queue = queues[shard];
    if (!queue) throw new Error(`no inbound queue for shard ${shard}`);
    annotate({ 'wxkf.shard': shard });
    const confirm = replicated?.(shard);
    // Sent before the add on the same (auto-pipelined) connection, so it sees the keys as they were: whether
    // this push was delivered before. The same script writes the user's window grant, order and timeline (no
    // extra round trip; in Redis before `success`, so they never wait for a worker; idempotent). Its keys share
    // the user's tag, so the node that takes the job has them: `confirm` (WAIT) covers them too.
    // Without a conversation, only the read of those keys goes before the add (the same slot: the shard's tag).
    const ingest =
      conversation === false ? seenBefore(shard, job.opts.jobId) : options.ingest(job, { handoff: Boolean(handoff) });
    const [ingested] = await Promise.all([ingest, queue.add(job.name, job.data, job.opts), binding]);
    await confirm?.();
    return ingested;
  };
  /** Within the timeout; anything but a refused signature is Redis not doing it (503). */
  const guarded = async <T>(work: Promise<T>): Promise<T> => {
    try {
      return await withTimeout(work, timeoutMs);
    } catch (error) {
      if (error instanceof SignatureError || error instanceof UnavailableError) throw error;
      throw new UnavailableError(errorMessage(error));
    }
  };
  // While tracing is on, a span whose child `add inbound.push` (bullmq-otel) stores its context in the job.
  const storePush = (job: ReturnType<typeof inboundJob>, options: StoreOptions = {}) =>
    inSpan('store', { 'wxkf.durability': durability }, () => guarded(store(job, options)));
  /** Binds a plaintext push's signature to its body, before the body is even parsed. */
  const bindPlaintext = (use: SignatureUse) => guarded(bind(use));
  return Object.assign(storePush, { bindPlaintext });
}

export type PushStore = ReturnType<typeof pushStore>;
