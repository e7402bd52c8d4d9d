import { existsSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { CONFIG_VARIABLES, SECRET_VARIABLES } from '@wx-kf/shared/config';
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
  volumes?: string[];
  secrets?: string[];
  env_file?: unknown;
  logging?: { driver: string; options?: Record<string, string> };
}
const compose = parse(read('docker-compose.yml'), { merge: true }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
  secrets: Record<string, { file: string }>;
};
const { services } = compose;
const apps = ['ingress', 'worker', 'admin'] as const;
const readme = read('README.md');

/** A service's bind mounts as { host, target, readOnly } (short syntax `./host:/target[:ro]`). */
const mounts = (service: Service) =>
  (service.volumes ?? []).map((v) => {
    const [host = '', target = '', mode] = v.split(':');
    return { host, target, readOnly: mode === 'ro' };
  });
/** Variables whose value is a path the service reads at start. */
const isPathVariable = (name: string) => name.endsWith('_FILE') || name === 'WECHAT_HANDLER';

describe('docker-compose.yml', () => {
  it('has redis, ingress, worker and admin', () => {
    expect(Object.keys(services).sort()).toEqual(['admin', 'ingress', 'redis', 'worker']);
  });

  it('runs Redis 7 with AOF, a memory bound with noeviction, a volume and a health check', () => {
    const redis = services.redis as Service;
    expect(redis.image).toMatch(/^redis:7/);
    const command = redis.command?.join(' ') ?? '';
    expect(command).toContain('--appendonly yes');
    expect(command).toContain('--appendfsync everysec');
    // Without maxmemory, noeviction never triggers: Redis grows until the kernel kills it.
    expect(command).toMatch(/--maxmemory [1-9]\d*[kmg]b\b/);
    expect(command).toContain('--maxmemory-policy noeviction');
    expect(Object.keys(compose.volumes)).toContain('redis-data');
    expect(redis.healthcheck?.test.join(' ')).toMatch(/redis-cli ping/);
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

  it('rotates the logs of every service', () => {
    for (const [name, service] of Object.entries(services)) {
      expect(service.logging?.driver, name).toBe('json-file');
      expect(service.logging?.options?.['max-size'], name).toMatch(/^\d+[km]$/);
      expect(Number(service.logging?.options?.['max-file']), name).toBeGreaterThan(1);
    }
  });

  it('reads config from read-only mounts: every configured path lies in a mount or a secret of the service', () => {
    for (const name of apps) {
      const service = services[name] as Service;
      for (const m of mounts(service)) {
        if (m.host.startsWith('.')) expect(m.readOnly, `${name} ${m.host}`).toBe(true);
      }
      const paths = Object.entries(service.environment ?? {}).filter(([key]) => isPathVariable(key));
      expect(paths.length, name).toBeGreaterThan(0);
      for (const [key, value] of paths) {
        const secret = value.match(/^\/run\/secrets\/([\w-]+)$/)?.[1];
        if (secret) {
          expect(service.secrets, `${name} ${key}`).toContain(secret);
        } else {
          const mount = mounts(service).find((m) => value.startsWith(`${m.target}/`));
          expect(mount?.readOnly, `${name} ${key}=${value} is not in a read-only mount`).toBe(true);
        }
      }
    }
  });

  it('documents the files a deployment provides, and ships the rules it tells you to start from', () => {
    for (const secret of Object.values(compose.secrets)) expect(readme).toContain(posix.normalize(secret.file));
    const rules = services.worker?.environment?.REPLY_RULES_FILE ?? '';
    const mount = mounts(services.worker as Service).find((m) => rules.startsWith(`${m.target}/`));
    const hostRules = posix.normalize(`${mount?.host}/${posix.relative(mount?.target ?? '', rules)}`);
    expect(hostRules).toBe('config/rules.yaml');
    expect(readme).toContain(`cp examples/rules.yaml ${hostRules}`);
    expect(existsSync(new URL('examples/rules.yaml', root))).toBe(true);
  });

  it('passes every secret as a *_FILE from compose secrets, never as an environment value', () => {
    for (const [name, service] of Object.entries(services)) {
      expect(service.env_file, `${name}: an env_file puts secrets in the environment`).toBeUndefined();
      const env = service.environment ?? {};
      for (const secret of SECRET_VARIABLES) {
        if (secret === 'REDIS_URL' && env.REDIS_URL) {
          expect(env.REDIS_URL, `${name}: a password belongs in REDIS_URL_FILE`).not.toContain('@');
          continue;
        }
        expect(env[secret], `${name} ${secret}`).toBeUndefined();
        if (env[`${secret}_FILE`]) expect(env[`${secret}_FILE`]).toMatch(/^\/run\/secrets\//);
      }
      for (const secret of service.secrets ?? []) expect(Object.keys(compose.secrets)).toContain(secret);
    }
    // The accounts file holds every AppSecret, token and AES key: a secret too.
    expect(services.worker?.environment?.WECHAT_ACCOUNTS_FILE).toMatch(/^\/run\/secrets\//);
    expect(services.admin?.environment?.ADMIN_PASSWORD_FILE).toMatch(/^\/run\/secrets\//);
    expect(services.admin?.environment?.ADMIN_API_KEY_FILE).toMatch(/^\/run\/secrets\//);
  });

  it('runs no admin listener in the public-facing ingress container', () => {
    const ingress = services.ingress as Service;
    expect(Object.keys(ingress.environment ?? {}).filter((n) => n.startsWith('ADMIN_'))).toEqual([]);
    expect(ingress.secrets ?? []).not.toContain('admin_password');
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

  it('ships no compiled tests: they are deleted right after the build', () => {
    expect(dockerfile).toContain(`RUN pnpm build && find apps packages -path '*/dist/*' -name '*.test.*' -delete`);
    // The runtime stage takes only dist/ folders (and the Redis scripts) from the build stage: no sources, no test kit.
    const fromBuild = [...dockerfile.matchAll(/^COPY --from=build \/app\/(\S+) /gm)].map((m) => m[1] ?? '');
    for (const path of fromBuild) {
      expect(path, path).toMatch(/(^|\/)dist$|package\.json$|^pnpm-|^package\.json$|^packages\/shared\/lua$/);
    }
    expect(fromBuild).toContain('packages/shared/lua'); // read at run time beside packages/shared/dist
    expect(fromBuild.some((p) => p.includes('testkit/dist'))).toBe(false);
  });

  it('provides the queue CLI the README documents (docker compose exec admin wx-kf-queues …)', () => {
    expect(dockerfile).toContain(`exec node /app/apps/admin/dist/cli.js "$@"`);
    expect(dockerfile).toContain('/usr/local/bin/wx-kf-queues');
    expect(dockerfile).toContain('COPY --from=build /app/apps/admin/dist apps/admin/dist');
    expect(existsSync(new URL('apps/admin/src/cli.ts', root))).toBe(true);
    expect(readme).toContain('docker compose exec admin wx-kf-queues stats');
  });

  it('keeps deployment secrets and config out of the build context', () => {
    const ignored = read('.dockerignore').split('\n');
    for (const dir of ['secrets', 'config', '.env']) expect(ignored).toContain(dir);
  });
});
