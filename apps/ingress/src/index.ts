export { buildApp, type IngressOptions } from './app.js';
export { IngressMetrics } from './metrics.js';
export { checkTimestamp, ingressAccount, PolicyError, receivePush } from './receive.js';
export { type RunningIngress, startIngress } from './server.js';
