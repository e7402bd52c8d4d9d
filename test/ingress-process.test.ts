import { accountEnv } from '@wx-kf/shared/config';
import { INBOUND_QUEUE, openQueue } from '@wx-kf/shared/queue';
import { createRedis, Keyspace } from '@wx-kf/shared/redis';
import { freePort, isolatedRedisUrl, ServiceProcess } from '@wx-kf/testkit';
import { buildPush, deliverPush, Simulator, sampleMessage } from '@wx-kf/wechat-sim';
import { afterAll, describe, expect, it } from 'vitest';

const keyspace = Keyspace.SINGLE;

const account = {
  appId: 'wxingressproc0001',
  appSecret: 'ingress-proc-app-secret',
  token: 'ingressProcToken',
  aesKey: 'IngressProcessTestEncodingAESKey00000000000',
};
const env = (extra: NodeJS.ProcessEnv) => ({
  ...accountEnv(account),
  HOST: '127.0.0.1',
  LOG_LEVEL: 'debug',
  ...extra,
});
const running: ServiceProcess[] = [];
afterAll(async () => {
  await Promise.all(running.map((p) => p.stop('SIGKILL')));
});

async function storedIds(redisUrl: string): Promise<Set<string>> {
  const redis = createRedis(redisUrl, 'client');
  const queue = openQueue(INBOUND_QUEUE, redis);
  const jobs = await queue.getJobs(['waiting', 'active', 'completed', 'failed', 'delayed']);
  await queue.close();
  redis.disconnect();
  return new Set(jobs.map((j) => String(j.id)));
}

describe('ingress process', () => {
  it('SIGTERM under load: in-flight pushes are answered, every success is stored, exit code 0', async () => {
    const redisUrl = await isolatedRedisUrl();
    const port = await freePort();
    const ingress = ServiceProcess.start('ingress', env({ REDIS_URL: redisUrl, PORT: String(port) }));
    running.push(ingress);
    await ingress.waitFor('ingress listening');
    const url = `http://127.0.0.1:${port}/wechat/${account.appId}`;
    const pushes = Array.from({ length: 400 }, () =>
      buildPush({ account, message: sampleMessage('text'), mode: 'safe', format: 'json' }),
    );
    const answers: { id: string; status: number | string }[] = [];
    const load = (async () => {
      for (let i = 0; i < pushes.length; i += 20) {
        const batch = pushes.slice(i, i + 20);
        const results = await Promise.all(batch.map((p) => deliverPush(url, p, { timeoutMs: 3000 })));
        for (const [j, r] of results.entries()) {
          answers.push({ id: `${account.appId}-m${batch[j]?.message.MsgId}`, status: r[0]?.status ?? 'none' });
        }
      }
    })();
    while (answers.length < 100) await new Promise((r) => setTimeout(r, 10));
    expect(await ingress.stop('SIGTERM')).toBe(0);
    await load;
    const stored = await storedIds(redisUrl);
    const succeeded = answers.filter((a) => a.status === 200);
    expect(succeeded.length).toBeGreaterThanOrEqual(100);
    for (const a of succeeded) expect(stored.has(a.id), a.id).toBe(true);
    // After the stop, pushes are refused (WeChat retries them elsewhere), never answered success.
    expect(answers.filter((a) => a.status !== 200).every((a) => a.status === 'error' || a.status === 503)).toBe(true);
  });

  it('counts pushes and sends in /metrics, and no secret reaches the logs of the ingress or the worker', async () => {
    const redisUrl = await isolatedRedisUrl();
    const [port, simPort, adminPort, workerMetricsPort, ingressMetricsPort] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const sim = new Simulator({
      accounts: [{ appId: account.appId, appSecret: account.appSecret, type: 'miniprogram' }],
    });
    await sim.listen(simPort);
    try {
      const common = env({
        REDIS_URL: redisUrl,
        PORT: String(port),
        WECHAT_API_BASE: sim.url,
        REPLY_RULES_FILE: 'examples/rules.yaml',
        // This account has an AES key: plaintext pushes are accepted only because the operator says so.
        WECHAT_SECURITY: 'any',
      });
      const ingress = ServiceProcess.start('ingress', { ...common, INGRESS_METRICS_PORT: String(ingressMetricsPort) });
      const worker = ServiceProcess.start('worker', { ...common, WORKER_METRICS_PORT: String(workerMetricsPort) });
      const admin = ServiceProcess.start('admin', {
        ...common,
        ADMIN_PORT: String(adminPort),
        ADMIN_PASSWORD: 'metrics-pass',
      });
      running.push(ingress, worker, admin);
      await Promise.all([
        ingress.waitFor('ingress listening'),
        worker.waitFor('worker started'),
        admin.waitFor('admin listening'),
      ]);
      // Its own metrics listener is on loopback (the default; read from the bound socket), never the public port.
      const listening = ingress.output
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l))
        .find((r) => r.msg === 'ingress listening');
      expect(listening.metricsUrl).toBe(`http://127.0.0.1:${ingressMetricsPort}`);
      // The ingress itself serves no admin listener (it used to, hidden, whenever ADMIN_PASSWORD was set).
      expect(ingress.output.join('\n')).not.toContain('admin listening');
      const url = `http://127.0.0.1:${port}/wechat/${account.appId}`;
      const sent = [];
      for (const [mode, format, tamper] of [
        ['safe', 'json', undefined],
        ['plain', 'xml', undefined],
        ['safe', 'xml', 'msg_signature'],
        ['plain', 'xml', 'signature'],
      ] as const) {
        const push = buildPush({ account, message: sampleMessage('text', { content: 'hello' }), mode, format, tamper });
        sent.push(push);
        await deliverPush(url, push);
      }
      while (sim.state.messages.length < 2) await new Promise((r) => setTimeout(r, 20));
      const auth = { authorization: `Basic ${Buffer.from('admin:metrics-pass').toString('base64')}` };
      const ingressMetrics = await (await fetch(`http://127.0.0.1:${ingressMetricsPort}/metrics`)).text();
      const adminMetrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`, { headers: auth })).text();
      expect(ingressMetrics).toContain(`wxkf_pushes_total{app_id="${account.appId}",mode="safe",result="stored"} 1`);
      expect(ingressMetrics).toContain(`wxkf_pushes_total{app_id="${account.appId}",mode="plain",result="stored"} 1`);
      expect(ingressMetrics).toContain(
        `wxkf_pushes_total{app_id="${account.appId}",mode="encrypted",result="rejected"} 1`,
      );
      expect(ingressMetrics).toMatch(/wxkf_push_ack_seconds_count\{result="stored"\} 2/);
      expect(ingressMetrics).toContain('process_cpu_user_seconds_total');
      expect(adminMetrics).toMatch(/wxkf_queue_jobs\{queue="inbound",state="completed"\} 2/);
      expect((await fetch(`http://127.0.0.1:${adminPort}/metrics`)).status).toBe(401);
      const workerMetrics = await (await fetch(`http://127.0.0.1:${workerMetricsPort}/metrics`)).text();
      expect(workerMetrics).toContain(`wxkf_sends_total{app_id="${account.appId}",errcode="0"} 2`);
      expect(workerMetrics).toContain(`wxkf_token_requests_total{app_id="${account.appId}",result="ok"} 1`);
      expect(await (await fetch(`http://127.0.0.1:${workerMetricsPort}/healthz`)).json()).toEqual({ status: 'ok' });
      const token = JSON.parse(
        (await createRedis(redisUrl, 'client').get(keyspace.token(account.appId))) ?? '{}',
      ).token;
      await Promise.all([ingress.stop('SIGTERM'), worker.stop('SIGTERM'), admin.stop('SIGTERM')]);
      const logs = [...ingress.output, ...worker.output, ...admin.output].join('\n');
      expect(logs).toContain('"outcome":"stored"');
      expect(logs).toContain('replies sent');
      const secrets = [account.appSecret, account.token, account.aesKey, token];
      for (const push of sent)
        secrets.push(push.query.signature as string, ...(push.query.msg_signature ? [push.query.msg_signature] : []));
      for (const secret of secrets) expect(logs).not.toContain(secret);
    } finally {
      await sim.close();
    }
  });
});
