export * from './ledger.js';
export * from './rules.js';
