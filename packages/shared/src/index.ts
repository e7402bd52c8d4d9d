export * from './log.js';
export * from './wechat/body.js';
export * from './wechat/crypto.js';
export * from './wechat/custom-message.js';
export * from './wechat/errors.js';
export * from './wechat/message.js';
export * from './wechat/reply.js';
export * from './wechat/signature.js';
