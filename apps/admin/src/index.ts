export {
  ADMIN_LIMITS,
  type AdminOptions,
  adminMetrics,
  buildAdminApp,
  IDEMPOTENCY_TTL_MS,
  type RunningAdmin,
  SEND_API_BODY_LIMIT,
  SEND_API_MAX_MESSAGES,
  startAdmin,
} from './admin.js';
export { type AccountPause, JOB_STATES, OPERATOR_PAUSE, type QueueStats, Queues } from './queues.js';
