export { WorkerMetrics } from './metrics.js';
export { type InboundDeps, type InboundResult, inboundProcessor } from './processors/inbound.js';
export { type OutboundDeps, outboundProcessor, QUOTA_PAUSE_MS } from './processors/outbound.js';
export { type HandlerContext, loadHandler, type MessageHandler } from './replies/handler.js';
export { type RunningWorker, startWorker, type WorkerStartOptions } from './worker.js';
