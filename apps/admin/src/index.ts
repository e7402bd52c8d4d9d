export { type AdminOptions, buildAdminApp, type RunningAdmin, startAdmin } from './admin.js';
export { JOB_STATES, type QueueStats, Queues } from './queues.js';
