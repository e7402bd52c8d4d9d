export * from './body.js';
export * from './crypto.js';
export * from './custom-message.js';
export * from './errors.js';
export * from './message.js';
export * from './passive-reply.js';
export * from './signature.js';
