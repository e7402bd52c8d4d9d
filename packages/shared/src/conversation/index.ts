export { type Erasure, forgetUser } from './forget.js';
export { GRANT_MARK_MS, Grants, type GrantTake } from './grants.js';
export * from './ledger.js';
export * from './rules.js';
export {
  DEFAULT_TIMELINE,
  describeReply,
  type OutEntry,
  type TimelineEntry,
  type TimelineOptions,
} from './timeline.js';
export type { SettleEffect, Take, WindowView } from './window.js';
