export { WorkerMetrics } from './metrics.js';
export { type InboundDeps, type InboundResult, inboundProcessor } from './processors/inbound.js';
export { outboundProcessor } from './processors/outbound.js';
export { QUOTA_PAUSE_MS, replySender, type SendDeps, type SendReplies } from './processors/send.js';
export { type HandlerContext, loadHandler, type MessageHandler } from './replies/handler.js';
export { type RunningWorker, startWorker, type WorkerStartOptions } from './worker.js';
