import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort, ServiceProcess } from '@wx-kf/testkit';
import { afterAll, describe, expect, it } from 'vitest';

// Issue 27: `pnpm sim push` told the simulator on 127.0.0.1:4010 about the user whatever WECHAT_API_BASE said.
const servers: Server[] = [];
afterAll(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));

/** A stand-in simulator that records the control calls it gets. */
async function recorder(): Promise<{ url: string; paths: string[] }> {
  const paths: string[] = [];
  const server = createServer((req, res) => {
    paths.push(`${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => res.end('{"ok":true}'));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, paths };
}

describe('pnpm sim push', () => {
  it('tells the simulator at WECHAT_API_BASE (a `sim serve --port` elsewhere) about the user', async () => {
    const sim = await recorder();
    // No ingress listens on PORT: the push is refused (exit 1), after the simulator was told.
    const push = ServiceProcess.start('sim', { WECHAT_API_BASE: `${sim.url}/`, PORT: String(await freePort()) }, [
      'push',
      '--text',
      'hello',
    ]);
    await push.exited;
    expect(sim.paths, push.output.join('\n')).toEqual(['POST /__sim/users/activity']);
  });

  it('--sim wins over WECHAT_API_BASE', async () => {
    const sim = await recorder();
    const push = ServiceProcess.start(
      'sim',
      { WECHAT_API_BASE: 'https://api.weixin.qq.com', PORT: String(await freePort()) },
      ['push', '--sim', sim.url],
    );
    await push.exited;
    expect(sim.paths).toEqual(['POST /__sim/users/activity']);
  });
});
