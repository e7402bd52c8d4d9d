export * from './log-capture.js';
export * from './redis-db.js';
export * from './redis-server.js';
export * from './service-process.js';
