// The private redis-server lives with the simulator (the demo uses it too); tests get it from here as before.
export {
  answersPing,
  freePort,
  hasRedisServer,
  LocalCluster,
  LocalSentinel,
  RedisServer,
  redisCli,
} from '@wx-kf/wechat-sim';
export * from './log-capture.js';
export * from './redis-db.js';
export * from './service-process.js';
