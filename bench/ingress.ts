// Ingress capacity: safe-mode pushes at 50 (and 200) connections against (a) a bare Fastify route,
// (b) the `wechat` middleware on Express, (c) a minimal hand-written handler (the reference) and
// (d) the wx-kf ingress, the last two with a local Redis, interleaved in rounds; the wx-kf ingress also with
// tracing on (OpenTelemetry over OTLP/HTTP to a sink in this process).

import { freePort, OtlpReceiver, RedisServer } from '@wx-kf/testkit';
import { buildPush, type Push, sampleMessage } from '@wx-kf/wechat-sim';
import autocannon from 'autocannon';
import { cpuSeconds, median, spawnIngress, spawnTarget, type Target, table } from './lib.js';

const ACCOUNT = {
  appId: 'wxbenchmark000001',
  token: 'benchToken',
  aesKey: 'BenchmarkEncodingAESKeyForWxKfIngress000000',
};
const DURATION = Number(process.env.BENCH_DURATION ?? 8);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const BARE = 'bare Fastify route (ceiling)';
const WEBOT = '`wechat` middleware on Express (XML only)';
/** Only the servers whose label contains this (e.g. `JSON` compares the wx-kf JSON rows alone); default all. */
const ONLY = process.env.BENCH_TARGETS;
/**
 * Another checkout of wx-kf (its dependencies installed), e.g. the commit before a change: its ingress runs as
 * two more rows, interleaved with this one's, so "no slower than before" is measured in one run.
 */
const BASELINE = process.env.BENCH_BASELINE;

interface Run {
  rps: number;
  p50: number;
  p99: number;
  max: number;
  cpu: number;
  perCpu: number;
  errors: number;
}

function pushes(format: 'json' | 'xml', n: number): { path: string; body: string; contentType: string }[] {
  // From many users, as WeChat's traffic is (one user's backlog is not what this measures).
  return Array.from({ length: n }, (_, i) => {
    const p: Push = buildPush({
      account: ACCOUNT,
      message: sampleMessage('text', { content: '你好 hello', fromUser: `o_bench_user_${i % 5000}` }),
      mode: 'safe',
      format,
    });
    return {
      path: `/wechat/${ACCOUNT.appId}?${new URLSearchParams(p.query)}`,
      body: p.body,
      contentType: p.contentType,
    };
  });
}

/** Safe-mode pushes of about `kb` kB whose msg_signature is wrong: what an attacker who knows the URL can send. */
function badPushes(kb: number, n: number): ReturnType<typeof pushes> {
  return pushes('xml', n).map((p) => ({
    ...p,
    path: p.path.replace(/msg_signature=[0-9a-f]+/, `msg_signature=${'0'.repeat(40)}`),
    body: p.body.replace('</xml>', `<Padding>${'<a>x</a>'.repeat(Math.ceil((kb * 1000) / 8))}</Padding></xml>`),
  }));
}

/**
 * Crafted safe-mode bodies of about 60 kB with a wrong msg_signature: the worst we found for the search for the
 * envelope's Encrypt, which runs before msg_signature is checked (a backtracking pattern spent ~180 ms on the first).
 */
const CRAFTED: Record<string, (size: number) => string> = {
  'repeated `<Encrypt><![CDATA[`': (size) => `<xml>${'<Encrypt><![CDATA['.repeat(size / 18)}`,
  'repeated `<Encrypt>A</Encrypt>`': (size) => `<xml>${'<Encrypt>A</Encrypt>'.repeat(size / 20)}</xml>`,
  'nested `<a>` elements': (size) => `<xml>${'<a>'.repeat(size / 3)}`,
  'JSON: repeated `"Encrypt":"A",`': (size) => `{${'"Encrypt":"A",'.repeat(size / 14)}"x":1}`,
  'JSON: one unterminated string of escapes': (size) => `{"Encrypt":"${'A\\'.repeat(size / 2)}`,
};

function craftedPushes(name: string, n: number): ReturnType<typeof pushes> {
  const body = (CRAFTED[name] as (size: number) => string)(60_000);
  return pushes('xml', n).map((p) => ({
    ...p,
    path: p.path.replace(/msg_signature=[0-9a-f]+/, `msg_signature=${'0'.repeat(40)}`),
    body,
  }));
}

async function load(port: number, connections: number, bodies: ReturnType<typeof pushes>, pid: number): Promise<Run> {
  let i = 0;
  const cpu0 = cpuSeconds(pid);
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections,
    duration: DURATION,
    requests: [
      {
        method: 'POST',
        setupRequest: (req) => {
          const b = bodies[i++ % bodies.length] as (typeof bodies)[number];
          return { ...req, path: b.path, body: b.body, headers: { 'content-type': b.contentType } };
        },
      },
    ],
  });
  const cpu = cpuSeconds(pid) - cpu0;
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    max: result.latency.max,
    cpu,
    perCpu: result.requests.total / cpu,
    errors: result.errors + result.timeouts + result.non2xx,
  };
}

export async function benchIngress(): Promise<string> {
  const redis = await RedisServer.start();
  // Takes the traced ingress's exports (protobuf, the SDK's default) and only counts them.
  const sink = await OtlpReceiver.start();
  const wxkf = (port: number, env: NodeJS.ProcessEnv = {}) =>
    spawnIngress(port, {
      REDIS_URL: redis.url,
      WECHAT_APP_ID: ACCOUNT.appId,
      WECHAT_APP_SECRET: 'bench-secret',
      WECHAT_TOKEN: ACCOUNT.token,
      WECHAT_AES_KEY: ACCOUNT.aesKey,
      // The pushes are signed once, at the start of a run that may last longer than the default 300 s window.
      WECHAT_TIMESTAMP_TOLERANCE_SECONDS: '1200',
      ...env,
    });
  const targets: { label: string; start: (port: number) => Promise<Target>; format: 'json' | 'xml' }[] = [
    {
      label: BARE,
      format: 'json',
      start: (port) => spawnTarget('bare', 'bench/targets/bare.ts', [String(port)], {}, 'listening'),
    },
    {
      label: WEBOT,
      format: 'xml',
      start: (port) =>
        spawnTarget(
          'webot',
          'bench/targets/webot.ts',
          [String(port), ACCOUNT.token, ACCOUNT.appId, ACCOUNT.aesKey],
          {},
          'listening',
        ),
    },
    {
      label: 'minimal verify + decrypt + `queue.add` (reference)',
      format: 'json',
      start: (port) =>
        spawnTarget(
          'minimal',
          'bench/targets/minimal.ts',
          [String(port), ACCOUNT.token, ACCOUNT.appId, ACCOUNT.aesKey, redis.url],
          {},
          'listening',
        ),
    },
    ...(['json', 'xml'] as const).map((format) => ({
      label: `wx-kf ingress, safe ${format.toUpperCase()} → Redis`,
      format,
      start: (port: number) => wxkf(port),
    })),
    {
      // An account that uses handoff: each message also reads (and renews) the user's handoff state.
      label: 'wx-kf ingress, safe JSON → Redis, handoff account',
      format: 'json' as const,
      start: (port: number) => wxkf(port, { WECHAT_HANDOFF: 'on' }),
    },
    {
      // Tracing on: each push's spans (request, verify, store, queue add) batched by the SDK and exported.
      label: 'wx-kf ingress, safe JSON → Redis, tracing on (OTLP/HTTP)',
      format: 'json' as const,
      start: (port: number) => wxkf(port, { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url }),
    },
  ];
  if (BASELINE) {
    const env = {
      REDIS_URL: redis.url,
      WECHAT_APP_ID: ACCOUNT.appId,
      WECHAT_APP_SECRET: 'bench-secret',
      WECHAT_TOKEN: ACCOUNT.token,
      WECHAT_AES_KEY: ACCOUNT.aesKey,
      WECHAT_TIMESTAMP_TOLERANCE: '1200', // the name before issue 25 (both names at once are refused)
    };
    for (const format of ['json', 'xml'] as const) {
      targets.push({
        label: `baseline (${BASELINE.split('/').pop()}) ingress, safe ${format.toUpperCase()} → Redis`,
        format,
        start: (port) => spawnIngress(port, env, [], 'apps/ingress/src/main.ts', BASELINE),
      });
    }
  }
  if (ONLY) targets.splice(0, targets.length, ...targets.filter((t) => t.label.includes(ONLY)));
  const bad: (string | number)[][] = [];
  const bodies = { json: pushes('json', 40_000), xml: pushes('xml', 40_000) };
  const results = new Map<string, Map<number, Run[]>>();
  try {
    for (const connections of [50, 200]) {
      for (let round = 0; round < ROUNDS; round++) {
        for (const t of targets) {
          const port = await freePort();
          const target = await t.start(port);
          await load(port, connections, bodies[t.format].slice(0, 2000), target.child.pid as number); // warm-up
          const run = await load(port, connections, bodies[t.format], target.child.pid as number);
          await target.stop();
          const byConn = results.get(t.label) ?? new Map<number, Run[]>();
          byConn.set(connections, [...(byConn.get(connections) ?? []), run]);
          results.set(t.label, byConn);
          console.log(
            `[bench ingress] c=${connections} round ${round + 1} ${t.label}: ${run.rps.toFixed(0)} req/s, p99 ${run.p99} ms, ${run.perCpu.toFixed(0)} req/CPU-s, errors ${run.errors}`,
          );
        }
      }
    }
    const refused: [string, ReturnType<typeof pushes>][] = [
      ['a genuine safe XML push (stored, for comparison)', bodies.xml],
      ...[60, 200].map((kb): [string, ReturnType<typeof pushes>] => [
        `${kb} kB, bad msg_signature`,
        badPushes(kb, 200),
      ]),
      ...Object.keys(CRAFTED).map((name): [string, ReturnType<typeof pushes>] => [
        `60 kB crafted: ${name}`,
        craftedPushes(name, 200),
      ]),
    ];
    for (const [label, pushBodies] of refused) {
      const port = await freePort();
      const target = await wxkf(port);
      const run = await load(port, 50, pushBodies, target.child.pid as number);
      await target.stop();
      bad.push([label, run.rps.toFixed(0), run.p99, run.perCpu.toFixed(0), (1e6 / run.perCpu) | 0]);
      console.log(`[bench ingress] ${label}: ${run.perCpu.toFixed(0)} req/CPU-s`);
    }
  } finally {
    await redis.dispose();
    await sink.close();
  }

  const rows: (string | number)[][] = [];
  for (const connections of [50, 200]) {
    // Against the bare route and the middleware when this run had them (BENCH_TARGETS may leave them out).
    const perCpuOf = (label: string) => {
      const runs = results.get(label)?.get(connections);
      return runs?.length ? median(runs.map((r) => r.perCpu)) : undefined;
    };
    const bare = perCpuOf(BARE);
    const webot = perCpuOf(WEBOT);
    for (const t of targets) {
      const runs = results.get(t.label)?.get(connections) ?? [];
      const perCpu = median(runs.map((r) => r.perCpu));
      rows.push([
        connections,
        t.label,
        median(runs.map((r) => r.rps)).toFixed(0),
        median(runs.map((r) => r.p50)).toFixed(0),
        median(runs.map((r) => r.p99)).toFixed(0),
        Math.max(...runs.map((r) => r.max)).toFixed(0),
        perCpu.toFixed(0),
        bare ? `${((perCpu / bare) * 100).toFixed(0)} %` : '—',
        webot ? `${(perCpu / webot).toFixed(2)}×` : '—',
        runs.reduce((n, r) => n + r.errors, 0),
      ]);
    }
  }
  return [
    `### Ingress: safe-mode pushes (median of ${ROUNDS} interleaved rounds of ${DURATION} s each)`,
    '',
    table(
      [
        'conns',
        'server',
        'req/s',
        'p50 ms',
        'p99 ms',
        'max ms',
        'req per CPU-s',
        'vs bare (per CPU)',
        'vs `wechat` (per CPU)',
        'errors',
      ],
      rows,
    ),
    '',
    'req per CPU-s = requests answered / CPU seconds used by the server process (user + system), the stable measure on a',
    'machine whose CPU steal makes raw req/s swing. The `wechat` middleware only parses XML; it verifies and decrypts but',
    'stores nothing. The reference is the "minimal hand-written verify + decrypt + `queue.add` handler" the issue names',
    '(`bench/targets/minimal.ts`): no logging, metrics, limits, timestamp check or error handling. The wx-kf ingress',
    'verifies, decrypts, parses, de-duplicates and stores every push in Redis before answering, and logs one line per push',
    '(LOG_LEVEL=info, the default). The handoff account (`WECHAT_HANDOFF=on`) also reads and renews the user’s',
    'handoff state on each message (one GETEX on the same pipelined write as the store; no user is handed off).',
    'The other rows run with tracing off (no OTEL_* set: no OpenTelemetry SDK loaded). "Tracing on" sets',
    '`OTEL_EXPORTER_OTLP_ENDPOINT` to an OTLP/HTTP sink in the bench process: four spans per push (the request,',
    '`verify`, `store`, BullMQ’s `add inbound.push`) and a log line carrying their trace id, exported by the SDK’s',
    `batch processor (protobuf, defaults); the sink answered ${sink.requests} exports, ${(sink.bytes / 2 ** 20).toFixed(1)} MiB in all.`,
    '',
    '### Ingress: refused pushes (50 connections)',
    '',
    table(['push', 'req/s', 'p99 ms', 'req per CPU-s', 'CPU µs per push'], bad),
    '',
    'Each is refused (401 after the signature check, 400 for a crafted envelope; 413 past the 64 kB body limit) and',
    'logged in one bounded line. The crafted bodies aim at the search for the envelope’s `Encrypt`, the only work done',
    'before msg_signature is checked: a linear scan, so none costs much more than a genuine push.',
  ].join('\n');
}
