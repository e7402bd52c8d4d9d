export * from './client.js';
export * from './errcodes.js';
export * from './errors.js';
export * from './http.js';
export * from './kf.js';
export * from './media.js';
export * from './sec-check.js';
export * from './token-manager.js';
