// A private redis-server (single, Cluster, Sentinel) on free loopback ports, for tests, benchmarks and the
// no-credentials demo. It loads only Node built-ins, so the demo imports it as `@wx-kf/testkit/local-redis`
// without the rest of the kit (which loads vitest).
export { LocalCluster, type LocalClusterOptions } from './local-cluster.js';
export { LocalSentinel, type LocalSentinelOptions } from './local-sentinel.js';
export { redisCli } from './redis-cli.js';
export { answersPing, freePort, hasRedisServer, RedisServer, type RedisServerOptions } from './redis-server.js';
