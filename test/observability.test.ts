import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { adminMetrics } from '@wx-kf/admin';
import { IngressMetrics } from '@wx-kf/ingress';
import { handoffCounter } from '@wx-kf/shared/handoff';
import { WorkerMetrics } from '@wx-kf/worker';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

// The dashboard and the alert rules in deploy/: promtool validates and unit-tests the rules, and every metric they
// name must be one the code registers (a renamed metric would otherwise leave a panel empty and an alert silent).
const root = fileURLToPath(new URL('../', import.meta.url));
const read = (file: string) => readFileSync(join(root, file), 'utf8');
const DASHBOARD = 'deploy/grafana/wx-kf.json';
const RULES = 'deploy/prometheus/alerts.yml';
const RULE_TESTS = 'deploy/prometheus/alerts.test.yml';
const PROMETHEUS = 'deploy/prometheus/prometheus.yml';
// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a template literal
const DATASOURCE_VARIABLE = '${datasource}';

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface Target {
  expr?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
}
const rules = (parse(read(RULES)) as { groups: { name: string; rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
const ruleTests = parse(read(RULE_TESTS)) as {
  tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
};
const dashboard = JSON.parse(read(DASHBOARD)) as {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: unknown }[] };
};
const queries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr ?? '' })));

/** Every metric name the wx-kf processes register: the ingress's, the worker's and the admin listener's own. */
function registeredMetrics(): Map<string, string> {
  const registry = new Registry();
  new IngressMetrics(registry);
  new WorkerMetrics(registry);
  handoffCounter([registry]);
  // Its gauges read Redis only when scraped; nothing here scrapes them.
  adminMetrics(registry, undefined as never, undefined as never, []);
  return new Map(registry.getMetricsAsArray().map((m) => [m.name, String(m.type)]));
}

/** A histogram's series (`_bucket`, `_sum`, `_count`) by their metric's name; anything else as it is. */
function metricOf(series: string, registered: Map<string, string>): string {
  const base = series.replace(/_(bucket|sum|count)$/, '');
  return base !== series && registered.get(base) === 'histogram' ? base : series;
}

const named = (text: string, pattern: RegExp) => new Set(text.match(pattern) ?? []);

describe('metric names in the dashboard and the rules', () => {
  const registered = registeredMetrics();

  it('every wxkf_* metric the dashboard, the rules and their tests name is one the code registers', () => {
    const unknown: string[] = [];
    for (const file of [DASHBOARD, RULES, RULE_TESTS]) {
      for (const series of named(read(file), /\bwxkf_[a-z0-9_]+/g)) {
        if (!registered.has(metricOf(series, registered))) unknown.push(`${file}: ${series}`);
      }
    }
    expect(unknown).toEqual([]);
    // The check has something to check: the rules and the dashboard use the registered names.
    expect(named(read(RULES), /\bwxkf_[a-z0-9_]+/g).size).toBeGreaterThan(5);
  });

  it('the process metrics the dashboard names are prom-client defaults; other names are up and redis_exporter', () => {
    const defaults = new Registry();
    collectDefaultMetrics({ register: defaults });
    const processMetrics = new Set(defaults.getMetricsAsArray().map((m) => m.name));
    const text = [...queries.map((q) => q.expr), ...rules.map((r) => r.expr)].join('\n');
    for (const name of named(text, /\b(?:process|nodejs)_[a-z0-9_]+/g)) expect(processMetrics, name).toContain(name);
    // redis_exporter's are the one exception to "metrics wx-kf exports" (docs/operating.md says so).
    for (const name of named(text, /\bredis_[a-z0-9_]+/g)) {
      expect(['redis_memory_used_bytes', 'redis_memory_max_bytes'], name).toContain(name);
    }
  });

  it('docs/operating.md lists every wxkf_* metric the code registers, and no other', () => {
    const page = read('docs/operating.md');
    const [start, end] = [page.indexOf('## Metrics\n'), page.indexOf('## Dashboard and alerts')];
    expect(start).toBeGreaterThan(0);
    expect(end).toBeGreaterThan(start);
    const table = page.slice(start, end);
    const documented = named(table, /\bwxkf_[a-z0-9_]+/g);
    expect([...documented].sort()).toEqual([...registered.keys()].filter((n) => n.startsWith('wxkf_')).sort());
  });

  it('the dashboard has the panels operators need, each on the data source variable', () => {
    const all = queries.map((q) => q.expr).join('\n');
    for (const metric of [
      'wxkf_pushes_total', // ingress rate
      'wxkf_requests_refused_total', // refusals and 503s before a push is read
      'wxkf_push_ack_seconds_bucket',
      'wxkf_queue_jobs', // queue depth
      'wxkf_queue_oldest_waiting_seconds', // age of the oldest waiting job
      'wxkf_sends_total', // sends by outcome and errcode
      'wxkf_window_refusals_total',
      'wxkf_handoffs_total',
      'wxkf_token_requests_total',
    ]) {
      expect(all, metric).toContain(metric);
    }
    expect(dashboard.uid).toBe('wx-kf');
    expect(dashboard.templating.list.find((v) => v.name === 'datasource')).toMatchObject({
      type: 'datasource',
      query: 'prometheus',
    });
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
      expect(panel.datasource?.uid, panel.title).toBe(DATASOURCE_VARIABLE);
      for (const target of panel.targets ?? []) expect(target.datasource?.uid, panel.title).toBe(DATASOURCE_VARIABLE);
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
    }
  });
});

describe('alerts.yml', () => {
  const page = read('docs/operating.md');
  // GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens.
  const anchors = new Set(
    [...page.matchAll(/^#{1,6} (.+)$/gm)].map((m) =>
      (m[1] as string)
        .trim()
        .toLowerCase()
        .replace(/[^\w\- ]/g, '')
        .replace(/ /g, '-'),
    ),
  );

  it('covers what operators must hear about', () => {
    const exprs = rules.map((r) => r.expr).join('\n');
    for (const needle of [
      'wxkf_requests_refused_total{status="503"}', // ingress 503s, load shedding
      'wxkf_pushes_total{result="unavailable"}', // ingress 503s, Redis
      'wxkf_queue_oldest_waiting_seconds', // the oldest waiting job
      'wxkf_sends_total', // sends failing
      'wxkf_token_requests_total', // token fetch failures
      'redis_memory_max_bytes', // Redis memory near maxmemory
      'absent(up{job="wx-kf-worker"} == 1)', // workers absent
    ]) {
      expect(exprs, needle).toContain(needle);
    }
  });

  it('gives every rule a severity, a summary, a description and a runbook anchor in docs/operating.md', () => {
    expect(new Set(rules.map((r) => r.alert)).size).toBe(rules.length);
    for (const rule of rules) {
      expect(['critical', 'warning'], rule.alert).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary, rule.alert).toBeTruthy();
      expect(rule.annotations?.description, rule.alert).toBeTruthy();
      const [page, anchor] = (rule.annotations?.runbook_url ?? '').split('#');
      expect(page, rule.alert).toBe('docs/operating.md');
      expect(anchor, rule.alert).toBe(rule.alert.toLowerCase());
      expect([...anchors], rule.alert).toContain(anchor);
    }
  });

  it('has a unit test where each rule fires and one where it stays quiet', () => {
    const cases = ruleTests.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const rule of rules) {
      const mine = cases.filter((c) => c.alertname === rule.alert);
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length > 0),
        `${rule.alert} fires`,
      ).toBe(true);
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length === 0),
        `${rule.alert} stays quiet`,
      ).toBe(true);
    }
  });

  it('selects the scrape jobs that deploy/prometheus/prometheus.yml defines', () => {
    const config = parse(read(PROMETHEUS)) as { rule_files: string[]; scrape_configs: { job_name: string }[] };
    const jobs = config.scrape_configs.map((s) => s.job_name);
    for (const rule of rules) {
      for (const [, job] of rule.expr.matchAll(/job="([^"]+)"/g)) expect(jobs, rule.alert).toContain(job);
      for (const [, pattern] of rule.expr.matchAll(/job=~"([^"]+)"/g)) {
        expect(
          jobs.filter((j) => new RegExp(`^(?:${pattern})$`).test(j)),
          rule.alert,
        ).toEqual(['wx-kf-ingress', 'wx-kf-worker', 'wx-kf-admin']);
      }
    }
    expect(config.rule_files).toEqual(['alerts.yml']);
  });
});

// promtool comes with Debian's prometheus package; .ci/run installs it. Only outside CI may it be missing.
const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
const havePromtool = !promtool.error;
if (!havePromtool && !process.env.CI) {
  console.warn(
    '[observability] promtool is not installed: the promtool checks are skipped (apt-get install -y prometheus; CI never skips them)',
  );
}

/** Runs promtool in the repository root; its output (both streams) for the failure message. */
function runPromtool(...args: string[]): { status: number | null; output: string } {
  const result = spawnSync('promtool', args, { cwd: root, encoding: 'utf8', timeout: 60_000 });
  if (result.error) {
    throw new Error(
      `promtool ${args.join(' ')}: ${result.error.message} (Debian's prometheus package; .ci/run installs it)`,
    );
  }
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe.skipIf(!havePromtool && !process.env.CI)('promtool', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'wx-kf-promtool-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('check rules: alerts.yml is valid', () => {
    const { status, output } = runPromtool('check', 'rules', RULES);
    expect(output).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(status, output).toBe(0);
  });

  it('test rules: every unit test in alerts.test.yml passes', () => {
    const { status, output } = runPromtool('test', 'rules', RULE_TESTS);
    expect(output).toContain('SUCCESS');
    expect(status, output).toBe(0);
  });

  it('check config: the compose deployment’s prometheus.yml is valid and loads the rules', () => {
    const { status, output } = runPromtool('check', 'config', PROMETHEUS);
    expect(output).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(status, output).toBe(0);
  });

  it('the dashboard’s queries are valid PromQL', () => {
    // Grafana's variables as Prometheus would receive them, each query as a recording rule for promtool to parse.
    const concrete = (expr: string) => expr.replaceAll('$__rate_interval', '1m').replaceAll('$app_id', '.*');
    const recorded = {
      groups: [
        {
          name: 'dashboard',
          rules: queries.map((q, i) => ({ record: `wxkf_dashboard:query${i}`, expr: concrete(q.expr) })),
        },
      ],
    };
    const file = join(scratch, 'dashboard-queries.yml');
    writeFileSync(file, JSON.stringify(recorded));
    const { status, output } = runPromtool('check', 'rules', file);
    expect(status, output).toBe(0);
    expect(output).toContain(`SUCCESS: ${queries.length} rules found`);
  });
});
