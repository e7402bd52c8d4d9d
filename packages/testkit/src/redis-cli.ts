import { spawnSync } from 'node:child_process';

/** One answer of `redis-cli -p port …` (the reply as text). */
export function redisCli(port: number, ...args: string[]): string {
  const run = spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8', timeout: 10_000 });
  return (run.stdout ?? '').trim();
}

/** Polls `check` every 100 ms until it holds; throws naming `what` after `ms`. */
export async function waitUntil(what: string, check: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
