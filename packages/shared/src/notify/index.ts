export * from './body.js';
export * from './data-kinds.js';
export * from './events.js';
