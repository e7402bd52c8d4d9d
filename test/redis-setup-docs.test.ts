import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, hasRedisServer } from '@wx-kf/testkit';
import { afterAll, describe, expect, it } from 'vitest';

// docs/operating.md, "Trying a Redis Cluster or Sentinel locally": its two shell blocks, run as written on free
// ports and in a private directory, make a cluster and a Sentinel set (issue 27).
const doc = readFileSync(new URL('../docs/operating.md', import.meta.url), 'utf8');
const section = doc.slice(doc.indexOf('### Trying a Redis Cluster or Sentinel locally'));
const [clusterBlock, sentinelBlock] = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
const cli = (port: number, ...args: string[]) =>
  spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8', timeout: 5000 }).stdout.trim();
const started: number[] = [];
afterAll(() => {
  for (const port of started.reverse()) cli(port, 'shutdown', 'nosave');
});

/** The block with its ports and /tmp directory swapped for free ones. */
async function localise(
  block: string,
  ports: number[],
  dir: string,
): Promise<{ text: string; map: Map<number, number> }> {
  const map = new Map<number, number>();
  for (const port of ports) map.set(port, await freePort());
  let text = block.replaceAll(/\/tmp\/wx-kf-(cluster|sentinel)/g, dir);
  for (const [from, to] of map) text = text.replaceAll(new RegExp(`\\b${from}\\b`, 'g'), String(to));
  started.push(...map.values());
  return { text, map };
}

async function until(check: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe.skipIf(!hasRedisServer())('docs: a local Redis Cluster and Sentinel set with the stock redis-server', () => {
  it('the Cluster block makes a 3-primary cluster whose slots are all served', async () => {
    expect(clusterBlock).toContain('--cluster-enabled yes');
    const { text, map } = await localise(
      clusterBlock ?? '',
      [7000, 7001, 7002],
      mkdtempSync(join(tmpdir(), 'wxkf-c-')),
    );
    const run = spawnSync('bash', ['-euc', text], { encoding: 'utf8', timeout: 60_000 });
    expect(run.status, run.stderr + run.stdout).toBe(0);
    const first = map.get(7000) ?? 0;
    await until(() => /cluster_state:ok/.test(cli(first, 'cluster', 'info')));
    expect(cli(first, 'cluster', 'info')).toMatch(/cluster_slots_ok:16384/);
    expect(cli(first, 'cluster', 'info')).toMatch(/cluster_size:3/);
  }, 90_000);

  it('the Sentinel block makes a primary with its replica, watched by three sentinels', async () => {
    expect(sentinelBlock).toContain('sentinel monitor mymaster');
    const { text, map } = await localise(
      sentinelBlock ?? '',
      [6380, 6381, 26379, 26380, 26381],
      mkdtempSync(join(tmpdir(), 'wxkf-s-')),
    );
    const run = spawnSync('bash', ['-euc', text], { encoding: 'utf8', timeout: 60_000 });
    expect(run.status, run.stderr + run.stdout).toBe(0);
    const [primary, replica, sentinel] = [map.get(6380) ?? 0, map.get(6381) ?? 0, map.get(26379) ?? 0];
    await until(() => /master_link_status:up/.test(cli(replica, 'info', 'replication')));
    await until(() => /num-other-sentinels\s+2/.test(cli(sentinel, 'sentinel', 'master', 'mymaster')));
    expect(cli(sentinel, 'sentinel', 'get-master-addr-by-name', 'mymaster').split('\n')).toEqual([
      '127.0.0.1',
      String(primary),
    ]);
  }, 90_000);
});
