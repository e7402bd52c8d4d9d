// `pnpm bench profile`: the ingress as production runs it (built JavaScript, `tsc -b` first) under safe-mode JSON
// load with --cpu-prof, summarised over the steady state only (the samples of the warm-up, when modules compile and
// the JIT settles, are left out): where its CPU goes, by package (ours, each dependency, Node) and by function.
// The profile file is kept for a closer look.
import { execSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, RedisServer } from '@wx-kf/testkit';
import { buildPush, sampleMessage } from '@wx-kf/wechat-sim';
import autocannon from 'autocannon';
import { ROOT, spawnIngress, table } from './lib.js';

const ACCOUNT = {
  appId: 'wxbenchprofile001',
  token: 'benchToken',
  aesKey: 'BenchmarkEncodingAESKeyForWxKfProfile000000',
};
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const WARM_UP_S = 4;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
}

/** The profile without its first `skipMs` of samples (the warm-up). */
function steadyState(profile: Profile, skipMs: number): Profile {
  let at = 0;
  const keep = profile.timeDeltas.map((d) => {
    at += d / 1000;
    return at >= skipMs;
  });
  return {
    ...profile,
    samples: profile.samples.filter((_, i) => keep[i]),
    timeDeltas: profile.timeDeltas.filter((_, i) => keep[i]),
  };
}

/** Where a frame's code lives: our source file, a dependency, or Node. */
function owner(url: string): string {
  if (!url) return '(native / GC / idle)';
  const dep = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (dep) return dep[1] as string;
  const ours = /\/(apps|packages)\/([^/]+)\/src\/(.+)$/.exec(url);
  if (ours) return `wx-kf ${ours[2]}/${ours[3]}`;
  if (url.startsWith('node:')) return 'node (core)';
  return url.replace(/^.*\//, '');
}

/** Self time per owner and per function, in % of the samples that were not idle. */
export function summarise(profile: Profile): { byOwner: [string, number][]; byFunction: [string, number][] } {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfMs = new Map<number, number>();
  for (const [i, id] of profile.samples.entries()) {
    selfMs.set(id, (selfMs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  }
  const byOwner = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let total = 0;
  for (const [id, ms] of selfMs) {
    const frame = (nodes.get(id) as ProfileNode).callFrame;
    if (frame.functionName === '(idle)' || frame.functionName === '(program)') continue;
    total += ms;
    const who = owner(frame.url);
    byOwner.set(who, (byOwner.get(who) ?? 0) + ms);
    const fn = `${frame.functionName || '(anonymous)'} ${who}:${frame.lineNumber + 1}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + ms);
  }
  const pct = (m: Map<string, number>) =>
    [...m].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, (v / total) * 100] as [string, number]);
  return { byOwner: pct(byOwner), byFunction: pct(byFunction) };
}

export async function benchProfile(): Promise<string> {
  const redis = await RedisServer.start();
  const dir = mkdtempSync(join(tmpdir(), 'wx-kf-profile-'));
  const port = await freePort();
  execSync('pnpm exec tsc -b --force', { cwd: ROOT, stdio: 'ignore' }); // --force: a dist/ deleted under a kept tsbuildinfo
  const spawned = Date.now();
  const target = await spawnIngress(
    port,
    {
      REDIS_URL: redis.url,
      WECHAT_APP_ID: ACCOUNT.appId,
      WECHAT_APP_SECRET: 'bench-secret',
      WECHAT_TOKEN: ACCOUNT.token,
      WECHAT_AES_KEY: ACCOUNT.aesKey,
    },
    ['--cpu-prof', `--cpu-prof-dir=${dir}`],
    'apps/ingress/dist/main.js',
  );
  const bodies = Array.from({ length: 40_000 }, (_, i) => {
    const message = sampleMessage('text', { fromUser: `o_bench_user_${i % 5000}` });
    const p = buildPush({ account: ACCOUNT, message, mode: 'safe', format: 'json' });
    return { path: `/wechat/${ACCOUNT.appId}?${new URLSearchParams(p.query)}`, body: p.body };
  });
  let i = 0;
  const load = (duration: number) =>
    autocannon({
      url: `http://127.0.0.1:${port}`,
      connections: 50,
      duration,
      requests: [
        {
          method: 'POST',
          setupRequest: (req) => {
            const b = bodies[i++ % bodies.length] as (typeof bodies)[number];
            return { ...req, path: b.path, body: b.body, headers: { 'content-type': 'application/json' } };
          },
        },
      ],
    });
  await load(WARM_UP_S);
  const warmedUpMs = Date.now() - spawned;
  const result = await load(DURATION);
  await target.stop();
  await redis.dispose();
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no profile written in ${dir}`);
  const profile = steadyState(JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile, warmedUpMs);
  const { byOwner, byFunction } = summarise(profile);
  const rows = (list: [string, number][], n: number) => list.slice(0, n).map(([k, v]) => [k, `${v.toFixed(1)} %`]);
  return [
    `### Ingress profile: built JavaScript, safe JSON, 50 connections, ${DURATION} s after a ${WARM_UP_S} s warm-up (${result.requests.average.toFixed(0)} req/s under --cpu-prof)`,
    '',
    'Self time by where the code lives (% of non-idle samples):',
    '',
    table(['code', 'self'], rows(byOwner, 15)),
    '',
    'Top functions:',
    '',
    table(['function', 'self'], rows(byFunction, 25)),
    '',
    `Profile: ${join(dir, file)}`,
  ].join('\n');
}
