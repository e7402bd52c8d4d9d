// Ack latency as load rises: the synchronous style (token + custom/send inside the push request) against the
// wx-kf ingress, both taking the same safe-mode XML pushes, with the simulator answering in 20 ms.

import { accountEnv } from '@wx-kf/shared/config';
import { freePort, RedisServer } from '@wx-kf/testkit';
import { buildPush, sampleMessage } from '@wx-kf/wechat-sim';
import autocannon from 'autocannon';
import { spawnIngress, spawnSim, spawnTarget, type Target, table } from './lib.js';

const ACCOUNT = {
  appId: 'wxbenchsync000001',
  appSecret: 'bench-sync-secret',
  token: 'benchToken',
  aesKey: 'BenchmarkEncodingAESKeyForWxKfSyncStyle0000',
};
const RATES = [250, 500, 1000, 2000];
const CONNECTIONS = 1000; // WeChat opens as many connections as it has pushes; bounded here by the box

export async function benchSync(): Promise<string> {
  const redis = await RedisServer.start();
  const simPort = await freePort();
  const ACCOUNT_ENV = accountEnv(ACCOUNT);
  const { url: simUrl, target: sim } = await spawnSim(simPort, ACCOUNT_ENV, 20);
  const bodies = Array.from({ length: 30_000 }, () => {
    const p = buildPush({ account: ACCOUNT, message: sampleMessage('text'), mode: 'safe', format: 'xml' });
    return { path: `/wechat/${ACCOUNT.appId}?${new URLSearchParams(p.query)}`, body: p.body };
  });
  const rows: (string | number)[][] = [];
  const crossed: Record<string, string> = {};
  try {
    for (const [label, start] of [
      [
        'synchronous style (`wechat` middleware + custom/send in the request)',
        (port: number) =>
          spawnTarget(
            'sync',
            'bench/targets/sync-express.ts',
            [String(port), ACCOUNT.token, ACCOUNT.appId, ACCOUNT.aesKey, simUrl, ACCOUNT.appSecret],
            {},
            'listening',
          ),
      ],
      [
        'wx-kf ingress (store, answer; replies sent later)',
        (port: number) => spawnIngress(port, { ...ACCOUNT_ENV, REDIS_URL: redis.url }),
      ],
    ] as const) {
      for (const rate of RATES) {
        const port = await freePort();
        const target: Target = await start(port);
        let i = 0;
        const result = await autocannon({
          url: `http://127.0.0.1:${port}`,
          connections: CONNECTIONS,
          overallRate: rate,
          duration: 5,
          timeout: 5,
          requests: [
            {
              method: 'POST',
              setupRequest: (req) => {
                const b = bodies[i++ % bodies.length] as (typeof bodies)[number];
                return { ...req, path: b.path, body: b.body, headers: { 'content-type': 'text/xml' } };
              },
            },
          ],
        });
        await target.stop();
        const failed = result.timeouts + result.errors + result.non2xx;
        if (!crossed[label] && (result.latency.p99 >= 5000 || result.timeouts > 0)) crossed[label] = `${rate} pushes/s`;
        rows.push([
          label,
          rate,
          result.requests.average.toFixed(0),
          result.latency.p50,
          result.latency.p99,
          result.latency.max,
          failed,
        ]);
        console.log(`[bench sync] ${label} @${rate}/s: p99 ${result.latency.p99} ms, failed ${failed}`);
      }
    }
  } finally {
    await sim.stop();
    await redis.dispose();
  }
  return [
    `### Ack latency as load rises: synchronous style vs wx-kf (safe XML, simulator API at 20 ms, up to ${CONNECTIONS} connections)`,
    '',
    table(['server', 'offered pushes/s', 'answered/s', 'p50 ms', 'p99 ms', 'max ms', 'timeouts (5 s) + errors'], rows),
    '',
    `First rate where the p99 reaches WeChat's 5 s limit (or pushes time out): ${
      Object.entries(crossed)
        .map(([k, v]) => `${k}: ${v}`)
        .join('; ') || 'neither, within the rates tried'
    }.`,
  ].join('\n');
}
