import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const ENTRY = {
  ingress: 'apps/ingress/src/main.ts',
  worker: 'apps/worker/src/main.ts',
  start: 'scripts/start.ts',
  sim: 'packages/wechat-sim/src/cli.ts',
  queues: 'apps/admin/src/cli.ts',
  admin: 'apps/admin/src/main.ts',
} as const;

/**
 * Appends each whole line a stream writes to `lines`. A pipe's chunks end where the reader caught up, not at a line
 * end (a busy machine cuts a log line in two) nor at a character's end (a Chinese reply cut in its UTF-8 bytes), so a
 * line's start waits for its end.
 */
export function collectLines(stream: Readable, lines: string[]): void {
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts.filter(Boolean));
  });
  stream.on('end', () => {
    if (partial) lines.push(partial);
  });
}

/** An ingress, worker, admin, `pnpm start`, sim or queue CLI running as its own OS process (from the TypeScript sources). */
export class ServiceProcess {
  readonly output: string[] = [];
  readonly exited: Promise<number | null>;

  private constructor(
    readonly name: keyof typeof ENTRY,
    private readonly child: ChildProcess,
  ) {
    if (child.stdout) collectLines(child.stdout, this.output);
    if (child.stderr) collectLines(child.stderr, this.output);
    // The pipes can still hold the last lines when the process has exited: they are read first (at most 2 s: a
    // process the service started may hold them open).
    const drained = [child.stdout, child.stderr].map((s) => (s ? new Promise((r) => s.once('close', r)) : undefined));
    this.exited = new Promise((resolve) =>
      child.once('exit', (code) => {
        const late = new Promise((r) => setTimeout(r, 2000).unref());
        void Promise.race([Promise.all(drained), late]).then(() => resolve(code));
      }),
    );
  }

  static start(name: keyof typeof ENTRY, env: NodeJS.ProcessEnv, args: string[] = []): ServiceProcess {
    const child = spawn(
      process.execPath,
      ['--conditions=wx-kf-source', '--import', 'tsx', join(ROOT, ENTRY[name]), ...args],
      {
        cwd: ROOT,
        env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'info', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    return new ServiceProcess(name, child);
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  /** Resolves once a log line contains `text` (e.g. "worker started"). */
  async waitFor(text: string, ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.output.some((l) => l.includes(text))) {
      if (Date.now() > deadline)
        throw new Error(`${this.name} did not log "${text}" within ${ms} ms:\n${this.output.join('\n')}`);
      if (this.child.exitCode !== null) {
        await this.exited; // its last lines may still be in the pipes
        if (this.output.some((l) => l.includes(text))) return;
        throw new Error(`${this.name} exited (${this.child.exitCode}):\n${this.output.join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Sends a signal and resolves with the exit code (null when killed by the signal). */
  stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}
