// Memory over 100 000 messages: ingress and worker RSS sampled as the replies arrive (should stay flat: retained
// jobs live in Redis, capped by count), plus Redis memory at the end.

import { accountEnv } from '@wx-kf/shared/config';
import { freePort, RedisServer } from '@wx-kf/testkit';
import { buildPush, sampleMessage } from '@wx-kf/wechat-sim';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { rssMiB, spawnIngress, spawnSim, spawnTarget, table } from './lib.js';

const ACCOUNT = {
  appId: 'wxbenchsoak000001',
  appSecret: 'bench-soak-secret',
  token: 'benchToken',
  aesKey: 'BenchmarkEncodingAESKeyForWxKfSoakTest00000',
};
const TOTAL = Number(process.env.BENCH_SOAK ?? 100_000);

export async function benchSoak(): Promise<string> {
  const redis = await RedisServer.start();
  const [simPort, port] = [await freePort(), await freePort()];
  const ACCOUNT_ENV = accountEnv(ACCOUNT);
  const { url: simUrl, target: sim } = await spawnSim(simPort, ACCOUNT_ENV);
  const env = {
    ...ACCOUNT_ENV,
    REDIS_URL: redis.url,
    WECHAT_API_BASE: simUrl,
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'warn',
  };
  const rules = `${process.cwd()}/examples/rules.yaml`;
  const ingress = await spawnIngress(port, env);
  const worker = await spawnTarget(
    'worker',
    'apps/worker/src/main.ts',
    [],
    { ...env, REPLY_RULES_FILE: rules, LOG_LEVEL: 'info' },
    'worker started',
  );
  const bodies = Array.from({ length: TOTAL }, (_, i) => {
    const p = buildPush({
      account: ACCOUNT,
      message: sampleMessage('text', { fromUser: `o_soak_${i}` }),
      mode: 'safe',
      format: 'json',
    });
    return { path: `/wechat/${ACCOUNT.appId}?${new URLSearchParams(p.query)}`, body: p.body };
  });
  const samples: (string | number)[][] = [];
  const count = async () =>
    ((await (await request(`${simUrl}/__sim/state`)).body.json()) as { messages: number }).messages;
  let i = 0;
  const load = autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: 20,
    amount: TOTAL,
    requests: [
      {
        method: 'POST',
        setupRequest: (req) => {
          const b = bodies[i++] ?? bodies[0];
          return { ...req, path: b?.path, body: b?.body };
        },
      },
    ],
  });
  const started = Date.now();
  for (let milestone = TOTAL / 10; milestone <= TOTAL; milestone += TOTAL / 10) {
    while ((await count()) < milestone) {
      if (Date.now() - started > 15 * 60_000) throw new Error(`soak: only ${await count()} replies after 15 minutes`);
      await new Promise((r) => setTimeout(r, 200));
    }
    samples.push([
      milestone,
      rssMiB(ingress.child.pid as number).toFixed(0),
      rssMiB(worker.child.pid as number).toFixed(0),
    ]);
    console.log(
      `[bench soak] ${milestone} replies: ingress ${samples.at(-1)?.[1]} MiB, worker ${samples.at(-1)?.[2]} MiB`,
    );
  }
  const result = await load;
  const client = new Redis(redis.url);
  const usedMiB = Number(/used_memory:(\d+)/.exec(await client.info('memory'))?.[1] ?? 0) / 2 ** 20;
  client.disconnect();
  await Promise.all([ingress.stop(), worker.stop(), sim.stop()]);
  await redis.dispose();
  return [
    `### Memory over ${TOTAL} messages (ingress + 1 worker, safe JSON, examples/rules.yaml; ${((Date.now() - started) / 1000).toFixed(0)} s)`,
    '',
    table(['replies sent', 'ingress RSS MiB', 'worker RSS MiB'], samples),
    '',
    `Pushes answered ${result.requests.total - result.non2xx} of ${TOTAL} (non-2xx: ${result.non2xx}, errors: ${result.errors}); Redis used_memory at the end ${usedMiB.toFixed(0)} MiB`,
    '(completed jobs retained: at most 10 000 per queue, plus de-duplication keys for an hour).',
  ].join('\n');
}
