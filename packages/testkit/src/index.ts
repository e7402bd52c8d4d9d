export * from './local-redis.js';
export * from './log-capture.js';
export * from './otlp-receiver.js';
export * from './redis-db.js';
export * from './service-process.js';
