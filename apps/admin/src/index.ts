export { type AdminOptions, buildAdminApp, type RunningAdmin, startAdmin } from './admin.js';
export { IDEMPOTENCY_TTL_MS } from './idempotency.js';
export { adminMetrics } from './metrics.js';
export { ADMIN_LIMITS } from './plugins/auth.js';
export { type AccountPause, JOB_STATES, OPERATOR_PAUSE, type QueueStats, Queues } from './queues.js';
export { SEND_API_BODY_LIMIT, SEND_API_MAX_MESSAGES } from './routes/schemas.js';
