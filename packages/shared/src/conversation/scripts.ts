import { defineScript } from '../redis/scripts.js';

// The conversation's Redis scripts (packages/shared/lua/), each with its keys and arguments by name. Every key
// of one call is about one user (or their shard's index and queue keys): one slot.

/** A push as the ingress stores it: grant, order, timeline and handoff renewal, unless it was stored before. */
export const ingestScript = defineScript(
  'ingest',
  ['window', 'order', 'timeline', 'openWindows', 'job', 'dedup', 'handoff'],
  [
    'at',
    'count',
    'ms',
    'trigger',
    'now',
    'jobId',
    'entry',
    'needle',
    'max',
    'ttl',
    'orderTtl',
    'openid',
    'handoffIdleMs',
  ],
);

/** Whether an inbound job heads its user's order (after its grant), optionally taking its first send; AI context. */
export const turnScript = defineScript(
  'turn',
  ['window', 'order', 'context'],
  ['jobId', 'at', 'count', 'ms', 'trigger', 'now', 'take', 'contextEntry', 'contextNeedle', 'contextMax', 'contextTtl'],
);

/** One send from a user's window. */
export const takeScript = defineScript('take', ['window'], ['now']);

/** A send's outcome: the window's change, the timeline and AI context entries, the job's release from the order. */
export const settleScript = defineScript(
  'settle',
  ['window', 'order', 'timeline', 'openWindows', 'context'],
  [
    'effect',
    'takenUntil',
    'now',
    'entry',
    'max',
    'ttl',
    'release',
    'at',
    'openid',
    'contextEntry',
    'contextMax',
    'contextTtl',
  ],
);

/** Drops a gone job from the head of its user's order. */
export const dropHeadScript = defineScript('drop-head', ['order'], ['head']);
