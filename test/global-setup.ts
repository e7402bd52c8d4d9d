// By path, not by package name: vitest loads this file before the projects' source conditions apply.

import type { TestProject } from 'vitest/node';
import { RedisServer } from '../packages/testkit/src/local-redis.js';

let server: RedisServer | undefined;

/** Uses REDIS_URL when set; otherwise starts a private redis-server on a free port for this run. */
export async function setup(project: TestProject): Promise<void> {
  let url = process.env.REDIS_URL;
  if (!url) {
    server = await RedisServer.start();
    url = server.url;
    console.log(`[test] started a private redis-server for this run at ${url}`);
  }
  project.provide('redisUrl', url);
}

export async function teardown(): Promise<void> {
  await server?.dispose();
}
