import { type ChildProcess, execSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLK_TCK = Number(execSync('getconf CLK_TCK').toString().trim()) || 100;

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Resident memory of a process in MiB. */
export function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/);
  return line ? Number(line[1]) / 1024 : 0;
}

export interface Target {
  name: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts an entry point as its own process and waits until it prints `ready`: a TypeScript source through tsx,
 * or built JavaScript (`.js`, as production runs it) with plain node.
 */
export async function spawnTarget(
  name: string,
  entry: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: string,
  nodeArgs: string[] = [],
  root = ROOT,
): Promise<Target> {
  const loader = entry.endsWith('.ts') ? ['--conditions=wx-kf-source', '--import', 'tsx'] : [];
  const node = [...nodeArgs, ...loader, join(root, entry), ...args];
  const child = spawn(process.execPath, node, {
    cwd: root,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    if (!ready) resolve();
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(ready)) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${name} exited (${code}) before it was ready:\n${output}`)));
  });
  child.stdout?.resume();
  child.stderr?.resume();
  return {
    name,
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** A Markdown table. */
export function table(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** Polls http://127.0.0.1:port/readyz until the ingress answers 200 (10 s at most). */
export async function waitForReady(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (
      await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the ingress on port ${port} did not become ready`);
}

/** The wx-kf ingress as its own process, ready to take pushes; it logs at `info` as in production (a line per push). */
export async function spawnIngress(
  port: number,
  env: NodeJS.ProcessEnv,
  nodeArgs: string[] = [],
  entry = 'apps/ingress/src/main.ts',
  root = ROOT,
): Promise<Target> {
  const target = await spawnTarget(
    'ingress',
    entry,
    [],
    { HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', ...env },
    '',
    nodeArgs,
    root,
  );
  await waitForReady(port);
  return target;
}

/** The simulator (`pnpm sim serve`) as its own process for the accounts in `env`; resolves its base URL. */
export async function spawnSim(
  port: number,
  env: NodeJS.ProcessEnv,
  latencyMs = 0,
): Promise<{ url: string; target: Target }> {
  const args = ['serve', '--port', String(port), ...(latencyMs ? ['--latency', String(latencyMs)] : [])];
  const target = await spawnTarget('sim', 'packages/wechat-sim/src/cli.ts', args, env, 'THIS IS A SIMULATOR');
  return { url: `http://127.0.0.1:${port}`, target };
}
