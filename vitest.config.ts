import { defineConfig } from 'vitest/config';

// Workspace packages resolve to their TypeScript sources in tests (see each package's "exports").
const resolve = { conditions: ['wx-kf-source'] };
const project = (name: string, include: string[], fileParallelism = true) => ({
  resolve,
  ssr: { resolve },
  test: { name, include, testTimeout: 20_000, hookTimeout: 30_000, fileParallelism },
});

export default defineConfig({
  test: {
    // Runs once for the whole run: a private redis-server unless REDIS_URL is set.
    globalSetup: ['test/global-setup.ts'],
    projects: [
      project('shared', ['packages/shared/src/**/*.test.ts']),
      project('wechat-sim', ['packages/wechat-sim/src/**/*.test.ts']),
      project('ingress', ['apps/ingress/src/**/*.test.ts']),
      project('worker', ['apps/worker/src/**/*.test.ts']),
      project('admin', ['apps/admin/src/**/*.test.ts']),
      project('repo', ['test/*.test.ts']),
      // One file at a time: each starts Redis servers, clusters and several processes, and kills some of them.
      project('faults', ['test/faults/*.test.ts'], false),
    ],
  },
});
