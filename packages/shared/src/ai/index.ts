export * from './action.js';
export * from './answers.js';
export * from './context.js';
export * from './limits.js';
export * from './prompt.js';
export * from './settings.js';
export * from './split.js';
