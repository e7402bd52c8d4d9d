import { existsSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { CONFIG_VARIABLES, SECRET_VARIABLES } from '@wx-kf/shared/config';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

// No Docker engine runs here: the compose file and the Dockerfile are checked against the contract instead.
const root = new URL('../', import.meta.url);
const read = (file: string) => readFileSync(new URL(file, root), 'utf8');

interface Service {
  profiles?: string[];
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
// `docker compose up` starts the services without a profile; the observability profile's only on request.
const services = Object.fromEntries(Object.entries(compose.services).filter(([, s]) => !s.profiles));
const observability = Object.fromEntries(
  Object.entries(compose.services).filter(([, s]) => s.profiles?.includes('observability')),
);
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
  it('has redis, ingress, worker and admin, and the optional observability profile', () => {
    expect(Object.keys(services).sort()).toEqual(['admin', 'ingress', 'redis', 'worker']);
    expect(Object.keys(observability).sort()).toEqual(['grafana', 'jaeger', 'prometheus', 'redis-exporter']);
    expect(Object.keys(compose.services).length).toBe(8);
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
    for (const name of apps) {
      for (const variable of Object.keys(services[name]?.environment ?? {})) {
        expect(CONFIG_VARIABLES, `${name} ${variable}`).toContain(variable);
      }
    }
  });

  it('rotates the logs of every service', () => {
    for (const [name, service] of Object.entries(compose.services)) {
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
    for (const [name, service] of Object.entries(compose.services)) {
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

describe('docker-compose.yml: the observability profile', () => {
  const prometheus = observability.prometheus as Service;
  const grafana = observability.grafana as Service;
  const promConfig = parse(read('deploy/prometheus/prometheus.yml')) as {
    rule_files: string[];
    scrape_configs: {
      job_name: string;
      basic_auth?: { username: string; password_file: string };
      static_configs?: { targets: string[] }[];
      dns_sd_configs?: { names: string[]; type: string; port: number }[];
    }[];
  };
  /** The file inside a service's bind mounts that `target` (a path in the container) is, on the host. */
  const hostPath = (service: Service, target: string) => {
    const mount = mounts(service).find((m) => target === m.target || target.startsWith(`${m.target}/`));
    return mount && posix.normalize(posix.join(mount.host, posix.relative(mount.target, target)));
  };

  it('uses the official images, pinned, and publishes its UIs on the host loopback only', () => {
    expect(prometheus.image).toMatch(/^prom\/prometheus:v\d+\.\d+\.\d+$/);
    expect(grafana.image).toMatch(/^grafana\/grafana:\d+\.\d+\.\d+$/);
    expect(observability['redis-exporter']?.image).toMatch(/^oliver006\/redis_exporter:v\d+\.\d+\.\d+$/);
    expect(observability.jaeger?.image).toMatch(/^jaegertracing\/jaeger:\d+\.\d+\.\d+$/);
    for (const [name, service] of Object.entries(observability)) {
      for (const port of service.ports ?? []) expect(port, name).toMatch(/^127\.0\.0\.1:/);
    }
  });

  it('mounts only files of the repository that exist, read-only', () => {
    for (const [name, service] of Object.entries(observability)) {
      for (const m of mounts(service).filter((m) => m.host.startsWith('.'))) {
        expect(m.readOnly, `${name} ${m.host}`).toBe(true);
        expect(existsSync(new URL(m.host, root)), `${name} ${m.host}`).toBe(true);
      }
    }
    expect(hostPath(prometheus, '/etc/prometheus/prometheus.yml')).toBe('deploy/prometheus/prometheus.yml');
  });

  it('starts Prometheus with the config and rules of deploy/prometheus', () => {
    const config = (prometheus.command ?? []).find((a) => a.startsWith('--config.file='))?.split('=')[1] ?? '';
    const hostConfig = hostPath(prometheus, config) ?? '';
    expect(hostConfig).toBe('deploy/prometheus/prometheus.yml');
    for (const file of promConfig.rule_files) {
      const rules = posix.join(posix.dirname(hostConfig), file);
      expect(existsSync(new URL(rules, root)), rules).toBe(true);
    }
    expect(promConfig.rule_files).toContain('alerts.yml');
  });

  it('scrapes each wx-kf service where it listens, and the admin listener with its password secret', () => {
    const jobs = new Map(promConfig.scrape_configs.map((j) => [j.job_name, j]));
    for (const [job, name, portVariable, hostVariable] of [
      ['wx-kf-ingress', 'ingress', 'INGRESS_METRICS_PORT', 'INGRESS_METRICS_HOST'],
      ['wx-kf-worker', 'worker', 'WORKER_METRICS_PORT', 'WORKER_METRICS_HOST'],
    ] as const) {
      const env = services[name]?.environment ?? {};
      // Found by the service name, so every replica of a scaled worker is scraped.
      expect(jobs.get(job)?.dns_sd_configs, job).toEqual([
        { names: [name], type: 'A', port: Number(env[portVariable]) },
      ]);
      expect(env[hostVariable], `${name} listens on the compose network`).toBe('0.0.0.0');
      expect(services[name]?.ports ?? [], `${name}'s metrics port is not published`).not.toContainEqual(
        expect.stringContaining(env[portVariable] ?? '?'),
      );
    }
    const admin = jobs.get('wx-kf-admin');
    expect(admin?.static_configs).toEqual([{ targets: [`admin:${services.admin?.environment?.ADMIN_PORT}`] }]);
    const secret = admin?.basic_auth?.password_file.match(/^\/run\/secrets\/([\w-]+)$/)?.[1];
    expect(secret).toBe('admin_password');
    expect(prometheus.secrets).toContain(secret);
    expect(services.admin?.environment?.ADMIN_PASSWORD_FILE).toBe(`/run/secrets/${secret}`);
    expect(jobs.get('redis')?.static_configs).toEqual([{ targets: ['redis-exporter:9121'] }]);
  });

  it('provisions Grafana with Prometheus and the dashboard file', () => {
    const provisioning = hostPath(grafana, '/etc/grafana/provisioning') ?? '';
    const datasources = parse(read(`${provisioning}/datasources/prometheus.yml`)) as {
      datasources: { type: string; url: string; isDefault: boolean }[];
    };
    expect(datasources.datasources).toEqual([
      expect.objectContaining({ type: 'prometheus', url: 'http://prometheus:9090', isDefault: true }),
    ]);
    const providers = parse(read(`${provisioning}/dashboards/wx-kf.yml`)) as {
      providers: { type: string; options: { path: string } }[];
    };
    const folder = providers.providers[0]?.options.path ?? '';
    const dashboards = mounts(grafana).filter((m) => posix.dirname(m.target) === folder);
    expect(dashboards.map((m) => posix.normalize(m.host))).toEqual(['deploy/grafana/wx-kf.json']);
    expect(grafana.environment?.GF_SECURITY_ADMIN_PASSWORD__FILE).toBe('/run/secrets/admin_password');
    expect(grafana.secrets).toContain('admin_password');
  });

  it('runs Jaeger for traces: OTLP on the compose network, the UI on the host loopback, tracing off until asked', () => {
    const jaeger = observability.jaeger as Service;
    const command = (jaeger.command ?? []).join(' ');
    // Jaeger 2 listens on localhost unless told otherwise: the services must reach its OTLP/HTTP port.
    expect(command).toContain('receivers.otlp.protocols.http.endpoint=0.0.0.0:4318');
    expect(jaeger.ports).toEqual(['127.0.0.1:16686:16686']);
    // Every wx-kf service passes the standard variable through, empty (no SDK loaded) unless the operator sets it.
    const passedThrough = `\${OTEL_EXPORTER_OTLP_ENDPOINT:-}`;
    for (const name of apps) expect(services[name]?.environment?.OTEL_EXPORTER_OTLP_ENDPOINT, name).toBe(passedThrough);
    const operating = read('docs/operating.md');
    expect(operating).toContain('OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4318');
    expect(operating).toContain('http://127.0.0.1:16686');
  });

  it('is documented: the README and docs/operating.md give the command', () => {
    expect(readme).toContain('docker compose --profile observability up -d');
    expect(read('docs/operating.md')).toContain('docker compose --profile observability up -d');
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  it('is multi-stage on a current Node LTS and runs as a non-root user', () => {
    const froms = [...dockerfile.matchAll(/^FROM node:(\d+)/gm)].map((m) => Number(m[1]));
    expect(froms.length).toBeGreaterThanOrEqual(2);
    // Node 22 or 24 (Node 20 is end of life), one version for every stage.
    for (const major of froms) expect([22, 24]).toContain(major);
    expect(new Set(froms).size).toBe(1);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toContain('pnpm install --frozen-lockfile');
    expect(dockerfile).toContain(`pnpm@${JSON.parse(read('package.json')).packageManager.split('@')[1]}`);
  });

  it('runs a Node version that engines allows, CI tests and the README names as supported', () => {
    const major = Number(/^FROM node:(\d+)/m.exec(dockerfile)?.[1]);
    const engines: string = JSON.parse(read('package.json')).engines.node;
    expect(engines).toBe('^22.19.0 || >=24');
    expect(engines).not.toMatch(/\b20\b/);
    const ci = read('.ci/run');
    expect(ci).toContain('node_bin 24');
    expect(ci).toContain(`node_bin ${major}`);
    expect(readme).toMatch(/Node 24 \(the current LTS\) or Node 22\.19\+/);
    expect(readme).toMatch(/Node 20 reached its end of\s+life/);
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
