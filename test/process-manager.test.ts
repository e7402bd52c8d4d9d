import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { collectLines, freePort, isolatedRedisUrl } from '@wx-kf/testkit';
import { afterAll, describe, expect, it } from 'vitest';

// A process manager that tracks the main PID starts `pnpm start:<part>` and, to stop it, signals that PID only.
// pnpm forwards the signal to the script's own process, so the script must `exec` node (no shell in between
// to swallow it): the service drains, exits 0, and nothing of it survives.

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** `pnpm <script>` in a process group of its own (its PID is the group's id), as a manager or a shell runs it. */
class PnpmScript {
  readonly output: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;

  constructor(script: string, env: NodeJS.ProcessEnv) {
    this.child = spawn('pnpm', [script], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    if (this.child.stdout) collectLines(this.child.stdout, this.output);
    if (this.child.stderr) collectLines(this.child.stderr, this.output);
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  async waitFor(text: string, ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.output.some((l) => l.includes(text))) {
      if (Date.now() > deadline || this.child.exitCode !== null) {
        throw new Error(`no "${text}" (exit ${this.child.exitCode}):\n${this.output.join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** True while any process of the group (pnpm, node, tsx's esbuild) is alive. */
  groupAlive(): boolean {
    try {
      process.kill(-this.pid, 0);
      return true;
    } catch {
      return false;
    }
  }

  /** Waits (bounded) for the whole group to be gone; the esbuild helper exits a moment after node. */
  async groupGone(ms = 5_000): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (this.groupAlive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    return !this.groupAlive();
  }

  kill(): void {
    if (this.groupAlive()) process.kill(-this.pid, 'SIGKILL');
  }
}

const running: PnpmScript[] = [];
afterAll(() => {
  for (const p of running) p.kill();
});

async function accountEnv(): Promise<NodeJS.ProcessEnv> {
  return {
    REDIS_URL: await isolatedRedisUrl(),
    WECHAT_APP_ID: 'wxprocessmanager1',
    WECHAT_APP_SECRET: 'process-manager-secret',
    WECHAT_TOKEN: 'pmtoken',
    WECHAT_API_BASE: `http://127.0.0.1:${await freePort()}`, // nothing listens: no send happens here
  };
}

describe('start commands under a process manager', () => {
  it.each([
    ['start:ingress', 'ingress', 'ingress listening'],
    ['start:worker', 'worker', 'worker started'],
    ['start:admin', 'admin', 'admin listening'],
  ])(
    'SIGTERM to the PID of `pnpm %s` drains the service and leaves no process',
    async (script, name, ready) => {
      const env = {
        ...(await accountEnv()),
        HOST: '127.0.0.1',
        PORT: String(await freePort()),
        ADMIN_PORT: String(await freePort()),
        ...(name === 'admin' ? { ADMIN_PASSWORD: 'process-manager-password' } : {}),
      };
      const p = new PnpmScript(script, env);
      running.push(p);
      await p.waitFor(ready);

      process.kill(p.pid, 'SIGTERM'); // the main PID only, as systemd (KillMode=mixed), supervisord or pm2 do
      expect(await p.exited).toEqual({ code: 0, signal: null });
      expect(p.output.some((l) => l.includes(`"${name} stopped"`))).toBe(true);
      expect(p.output.join('\n')).not.toContain('ELIFECYCLE');
      expect(await p.groupGone()).toBe(true);
    },
    60_000,
  );

  it('Ctrl-C on `pnpm start` (SIGINT to the whole group) exits 0 after draining, without ELIFECYCLE', async () => {
    const env = {
      REDIS_URL: await isolatedRedisUrl(),
      PORT: String(await freePort()),
      SIM_PORT: String(await freePort()),
    };
    const p = new PnpmScript('start', env);
    running.push(p);
    await p.waitFor('Push a message as WeChat would');

    // The terminal signals every process of the foreground group; pnpm then forwards a second SIGINT.
    process.kill(-p.pid, 'SIGINT');
    expect(await p.exited).toEqual({ code: 0, signal: null });
    expect(p.output.some((l) => l.includes('"wx-kf demo stopped"'))).toBe(true);
    expect(p.output.join('\n')).not.toContain('ELIFECYCLE');
    expect(await p.groupGone()).toBe(true);
  }, 60_000);
});
