import { readdirSync, readFileSync } from 'node:fs';
import { freePort, isolatedRedisUrl, ServiceProcess } from '@wx-kf/testkit';
import { afterAll, describe, expect, it } from 'vitest';

const running: ServiceProcess[] = [];
afterAll(async () => {
  await Promise.all(running.map((p) => p.stop('SIGTERM')));
});

async function until(check: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('pnpm start without credentials (the demo)', () => {
  it('runs ingress, worker and simulator; "hello" gets its rule reply, a question the fake model\'s; SIGTERM exits cleanly', async () => {
    const [port, simPort] = [await freePort(), await freePort()];
    const env = { REDIS_URL: await isolatedRedisUrl(), PORT: String(port), SIM_PORT: String(simPort) };
    const demo = ServiceProcess.start('start', env);
    running.push(demo);
    await demo.waitFor('Push a message as WeChat would');
    expect(demo.output.join('\n')).toContain('SIMULATOR, not to WeChat');

    const push = ServiceProcess.start('sim', env, [
      'push',
      '--text',
      'hello',
      '--format',
      'json',
      '--sim',
      `http://127.0.0.1:${simPort}`,
    ]);
    expect(await push.exited).toBe(0);
    expect(push.output.join('\n')).toMatch(/← 200 in [\d.]+ ms: success/);
    await demo.waitFor('"content":"hi! this reply came from the rules file"');

    // Any other text is answered by the simulator's fake model (AI_BASE_URL points the demo at a real one).
    const question = ServiceProcess.start('sim', env, ['push', '--text', 'what do you sell?', '--format', 'json']);
    expect(await question.exited).toBe(0);
    // Its request carried the conversation so far: the "hello" exchange.
    await demo.waitFor('[fake model] messages=4 system=1 user=2 assistant=1 tool=0 last=\\"what do you sell?\\"');

    const transfer = ServiceProcess.start('sim', env, ['push', '--text', '转人工']);
    expect(await transfer.exited).toBe(0);
    expect(transfer.output.join('\n')).toMatch(/decrypted: .*transfer_customer_service/);
    // The demo says the push went to a human, and so for the next one while the user is handed off (issue 27).
    await demo.waitFor('[demo] "转人工" from o_sim_user_0001 went to a HUMAN: answered with transfer_customer_service');
    const silent = ServiceProcess.start('sim', env, ['push', '--text', 'hello again']);
    expect(await silent.exited).toBe(0);
    await demo.waitFor('[demo] "hello again" from o_sim_user_0001 went to a HUMAN: the user is handed off');
    // The agent closes the session: the bot answers again.
    const close = ServiceProcess.start('sim', env, ['push', '--type', 'kf_close_session', '--agent', 'kf001@sandbox']);
    expect(await close.exited).toBe(0);
    const back = ServiceProcess.start('sim', env, ['push', '--text', 'hello']);
    expect(await back.exited).toBe(0);
    await until(() => demo.output.filter((l) => l.includes('hi! this reply came from the rules file')).length === 2);

    // The sandbox WeCom corp: the simulator queues the customer's message, the notice goes to the ingress, a
    // worker pulls and answers through kf/send_msg.
    const wecom = ServiceProcess.start('sim', env, [
      'push',
      '--wecom',
      '--text',
      'hello',
      '--sim',
      `http://127.0.0.1:${simPort}`,
    ]);
    expect(await wecom.exited).toBe(0);
    await until(() =>
      demo.output.some((l) => l.startsWith('[simulator] kf/send_msg → wm_sim_customer_0001:') && l.includes('hi!')),
    );

    const verify = ServiceProcess.start('sim', env, ['verify']);
    expect(await verify.exited).toBe(0);
    expect(verify.output).toContain('← 200: 4375120948345356249');

    expect(await demo.stop('SIGTERM')).toBe(0);
  }, 60_000);

  it('without REDIS_URL uses a private redis-server of its own, never a Redis on 6379 (issue 27)', async () => {
    const [port, simPort] = [await freePort(), await freePort()];
    const demo = ServiceProcess.start('start', { REDIS_URL: '', PORT: String(port), SIM_PORT: String(simPort) });
    running.push(demo);
    await demo.waitFor('Push a message as WeChat would');
    const text = demo.output.join('\n');
    expect(text).toMatch(/\[demo\] started a private redis-server at redis:\/\/127\.0\.0\.1:\d+ \(the demo's own data/);
    expect(text).toMatch(/ {2}redis {6}redis:\/\/127\.0\.0\.1:(?!6379\b)\d+/);
    expect(await demo.stop('SIGTERM')).toBe(0);
  });

  it('pnpm sim serve --latency answers API calls after that many ms', async () => {
    const port = await freePort();
    const sim = ServiceProcess.start('sim', {}, ['serve', '--port', String(port), '--latency', '300']);
    running.push(sim);
    await sim.waitFor('THIS IS A SIMULATOR');
    const started = performance.now();
    const res = await fetch(`http://127.0.0.1:${port}/cgi-bin/token?grant_type=client_credential`);
    expect(res.status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    expect(await sim.stop('SIGTERM')).toBe(0);
  });

  it('pnpm sim serve --help documents every control endpoint the simulator serves', async () => {
    const dir = new URL('../packages/wechat-sim/src/', import.meta.url);
    const sources = readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
    const server = sources.map((f) => readFileSync(new URL(f, dir), 'utf8')).join('\n');
    const routes = [...server.matchAll(/app\.(get|post)\('(\/__sim\/[^']+)'/g)].map(
      ([, method, path]) => `${method?.toUpperCase()} ${path?.replace(/:(\w+)/g, '<$1>')}`,
    );
    expect(routes).toContain('POST /__sim/faults');
    const help = ServiceProcess.start('sim', {}, ['serve', '--help']);
    expect(await help.exited).toBe(0);
    const text = help.output.join('\n').replace(/ {2,}/g, ' ');
    for (const route of [...routes, 'POST /__sim/latency', 'POST /__sim/reset']) expect(text).toContain(route);
  });

  it('a push to a stopped ingress exits non-zero', async () => {
    const push = ServiceProcess.start('sim', { PORT: String(await freePort()) }, ['push', '--text', 'x']);
    expect(await push.exited).toBe(1);
  });
});
