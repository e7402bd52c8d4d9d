export * from './catalogue.js';
export * from './faults.js';
export * from './local-redis.js';
export * from './push-client.js';
export * from './samples.js';
export * from './sandbox.js';
export * from './server.js';
export * from './state.js';
