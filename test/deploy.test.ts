import { existsSync, readFileSync } from 'node:fs';
import { CONFIG_VARIABLES } from '@wx-kf/shared';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

// No Docker engine runs here: the compose file and the Dockerfile are checked against the contract instead.
const root = new URL('../', import.meta.url);
const read = (file: string) => readFileSync(new URL(file, root), 'utf8');

interface Service {
  image?: string;
  build?: string;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  container_name?: string;
  stop_grace_period?: string;
}
const compose = parse(read('docker-compose.yml'), { merge: true }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const { services } = compose;

describe('docker-compose.yml', () => {
  it('has redis, ingress, worker and admin', () => {
    expect(Object.keys(services).sort()).toEqual(['admin', 'ingress', 'redis', 'worker']);
  });

  it('runs Redis 7 with AOF, noeviction, a volume and a health check', () => {
    const redis = services.redis as Service;
    expect(redis.image).toMatch(/^redis:7/);
    expect(redis.command?.join(' ')).toContain('--appendonly yes');
    expect(redis.command?.join(' ')).toContain('--maxmemory-policy noeviction');
    expect(Object.keys(compose.volumes)).toContain('redis-data');
    expect(redis.healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
  });

  it('starts each part from its compiled entry point, after Redis is healthy', () => {
    for (const [name, entry] of [
      ['ingress', 'apps/ingress/src/main.ts'],
      ['worker', 'apps/worker/src/main.ts'],
      ['admin', 'apps/admin/src/main.ts'],
    ] as const) {
      const service = services[name] as Service;
      expect(service.command).toEqual(['node', entry.replace('/src/', '/dist/').replace(/\.ts$/, '.js')]);
      expect(existsSync(new URL(entry, root))).toBe(true);
      expect(service.depends_on?.redis?.condition).toBe('service_healthy');
      expect(service.environment?.REDIS_URL).toBe('redis://redis:6379');
      expect(service.healthcheck?.test[0]).toBe('CMD');
      expect(Number.parseInt(service.stop_grace_period ?? '0', 10)).toBeGreaterThan(30);
    }
  });

  it('lets the worker scale (no fixed name, no host port) and keeps admin off the public interface', () => {
    const worker = services.worker as Service;
    expect(worker.container_name).toBeUndefined();
    expect(worker.ports).toBeUndefined();
    expect(services.admin?.ports).toEqual(['127.0.0.1:3001:3001']);
    expect(services.ingress?.ports).toEqual(['3000:3000']);
  });

  it('sets only variables the configuration knows', () => {
    for (const service of Object.values(services)) {
      for (const name of Object.keys(service.environment ?? {})) expect(CONFIG_VARIABLES, name).toContain(name);
    }
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  it('is multi-stage on a current Node LTS and runs as a non-root user', () => {
    const froms = [...dockerfile.matchAll(/^FROM node:(\d+)/gm)].map((m) => Number(m[1]));
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const major of froms) expect(major % 2 === 0 && major >= 20).toBe(true);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toContain('pnpm install --frozen-lockfile');
    expect(dockerfile).toContain(`pnpm@${JSON.parse(read('package.json')).packageManager.split('@')[1]}`);
  });

  it('copies every workspace package manifest the lockfile needs', () => {
    const workspaces = [
      'packages/shared',
      'packages/wechat-sim',
      'packages/testkit',
      'apps/ingress',
      'apps/worker',
      'apps/admin',
      'bench',
    ];
    for (const ws of workspaces) {
      expect(existsSync(new URL(`${ws}/package.json`, root))).toBe(true);
      expect(dockerfile).toContain(`COPY ${ws}/package.json ${ws}/`);
    }
  });
});
