// The no-credentials demo of `pnpm start`: the simulator on loopback stands in for WeChat (and WeCom), with a
// sandbox Mini Program and a sandbox WeCom customer-service corp, and Redis of its own: a private redis-server (or, without one installed, a database of its own on the
// Redis at 127.0.0.1:6379, emptied at each start), never another application's data.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AccountConfig } from '@wx-kf/shared/config';
import { INBOUND_QUEUE, type InboundJobData, openQueue, readInboundResult } from '@wx-kf/shared/queue';
import { createRedis, keyspaceOf } from '@wx-kf/shared/redis';
import { runService } from '@wx-kf/shared/service';
// The launcher alone (Node built-ins only), not the test kit's index, which loads vitest.
import { answersPing, hasRedisServer, RedisServer } from '@wx-kf/testkit/local-redis';
import { DEFAULT_SIM_PORT, SANDBOX_ACCOUNT, SANDBOX_WECOM, SANDBOX_WECOM_ACCOUNT, Simulator } from '@wx-kf/wechat-sim';
import { QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import type { startAll } from './start.js';

/**
 * The first model a real endpoint lists (`GET /models`), so that AI_BASE_URL alone points the demo at it; undefined
 * when it lists none (the start then asks for AI_MODEL).
 */
async function firstModel(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  try {
    const headers = env.AI_API_KEY ? { authorization: `Bearer ${env.AI_API_KEY}` } : undefined;
    const res = await fetch(`${env.AI_BASE_URL?.replace(/\/+$/, '')}/models`, {
      headers,
      signal: AbortSignal.timeout(5000),
    });
    const body: unknown = await res.json();
    const data = typeof body === 'object' && body !== null && 'data' in body ? body.data : undefined;
    const first: unknown = Array.isArray(data) ? data[0] : undefined;
    const id = typeof first === 'object' && first !== null && 'id' in first ? first.id : undefined;
    if (typeof id === 'string')
      console.log(`[demo] AI_MODEL is not set: using ${id}, the first model the endpoint lists`);
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}

/** The demo's database on the Redis at 127.0.0.1:6379 when no redis-server is installed to start a private one. */
const DEMO_DB = 15;
const DEMO_MARK = 'wx-kf:demo-database';

/**
 * Database 15 of the Redis on 127.0.0.1:6379, emptied at each start (so a user handed off in an earlier run is not
 * still with a human): used only when it is empty or holds the demo's mark, never another application's keys.
 */
async function demoDatabase(): Promise<string> {
  const url = `redis://127.0.0.1:6379/${DEMO_DB}`;
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    if ((await redis.dbsize()) > 0 && !(await redis.exists(DEMO_MARK))) {
      console.error(
        `[demo] database ${DEMO_DB} of the Redis on 127.0.0.1:6379 holds keys that are not the demo's: set REDIS_URL to a Redis (or database) for the demo, or install redis-server (e.g. apt-get install -y redis-server)`,
      );
      process.exit(1);
    }
    await redis.flushdb();
    await redis.set(DEMO_MARK, 'this database is emptied by each start of the wx-kf demo');
  } finally {
    redis.disconnect();
  }
  console.log(
    `[demo] no redis-server installed: using database ${DEMO_DB} of the Redis on 127.0.0.1:6379 (${url}), the demo's own, emptied at each start`,
  );
  return url;
}

/**
 * Says when a push went to a human instead of the bot: the ingress transferred it (a transfer rule), or the user
 * is handed off (the bot stays silent), which would otherwise print nothing.
 */
async function announceHandoffs(redisUrl: string): Promise<() => Promise<void>> {
  const redis = createRedis(redisUrl, 'client');
  const queue = openQueue(INBOUND_QUEUE, redis);
  const listener = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const events = new QueueEvents(INBOUND_QUEUE, { connection: listener, prefix: keyspaceOf(redis).queuePrefix(0) });
  events.on('completed', async ({ jobId, returnvalue }) => {
    const result = readInboundResult(typeof returnvalue === 'string' ? JSON.parse(returnvalue) : returnvalue);
    if (result?.action !== 'transferred' && result?.action !== 'handoff') return;
    const data: InboundJobData | undefined = (await queue.getJob(jobId).catch(() => undefined))?.data;
    const message = data?.message;
    const what = message?.Content ? `"${message.Content}"` : (message?.Event ?? message?.MsgType ?? 'a push');
    const user = message?.FromUserName ?? '?';
    console.log(
      result.action === 'transferred'
        ? `[demo] ${what} from ${user} went to a HUMAN: answered with transfer_customer_service, and the user is handed off: the bot stays silent to them until \`pnpm sim push --type kf_close_session --from ${user}\` (an agent closing the session) or 30 idle minutes`
        : `[demo] ${what} from ${user} went to a HUMAN: the user is handed off, so the bot does not answer (\`pnpm sim push --type kf_close_session --from ${user}\` gives them back to the bot)`,
    );
  });
  events.on('error', () => {});
  await events.waitUntilReady();
  return async () => {
    await events.close();
    await queue.close();
    listener.disconnect();
    redis.disconnect();
  };
}

/** The demo's accounts file (a temporary one): the sandbox Mini Program and the sandbox WeCom corp. */
function demoAccountsFile(): string {
  const entry = ({ appId, appSecret, token, aesKey, type }: AccountConfig) => ({
    appId,
    appSecret,
    token,
    aesKey,
    type,
  });
  const file = join(mkdtempSync(join(tmpdir(), 'wx-kf-demo-')), 'accounts.json');
  writeFileSync(file, JSON.stringify({ accounts: [entry(SANDBOX_ACCOUNT), entry(SANDBOX_WECOM_ACCOUNT)] }));
  return file;
}

/** The simulator for the sandbox accounts, printing every message it delivers. */
function demoSimulator(): Simulator {
  return new Simulator({
    accounts: [SANDBOX_ACCOUNT],
    onMessage: (m) => console.log(`[simulator] custom/send → ${m.touser}: ${JSON.stringify(m.body)}`),
    wecom: {
      corps: [SANDBOX_WECOM],
      onSend: (m) =>
        console.log(`[simulator] kf/send_msg${m.viaEvent ? '_on_event' : ''} → ${m.touser}: ${JSON.stringify(m.body)}`),
    },
  });
}

/** Runs the demo with `start` (the same composition as a real `pnpm start`). */
export async function demo(start: typeof startAll): Promise<void> {
  let redisUrl = process.env.REDIS_URL || undefined;
  let privateRedis: RedisServer | undefined;
  // A cluster or Sentinel set given (REDIS_CLUSTER_NODES, REDIS_SENTINELS) is used as it is.
  const otherRedis = Boolean(process.env.REDIS_CLUSTER_NODES || process.env.REDIS_SENTINELS);
  if (!redisUrl && !otherRedis) {
    if (hasRedisServer()) {
      // In its own process group: Ctrl-C must not stop it before the demo has drained.
      privateRedis = await RedisServer.start({ detached: true });
      redisUrl = privateRedis.url;
      console.log(`[demo] started a private redis-server at ${redisUrl} (the demo's own data, thrown away on exit)`);
    } else if (await answersPing(6379)) {
      redisUrl = await demoDatabase();
    } else {
      console.error(
        '[demo] no Redis: set REDIS_URL, or run `docker compose up -d redis`, or install redis-server (e.g. apt-get install -y redis-server)',
      );
      process.exit(1);
    }
  }
  const simPort = Number(process.env.SIM_PORT ?? DEFAULT_SIM_PORT);
  const sim = demoSimulator();
  const simUrl = await sim.listen(simPort);
  const a = SANDBOX_ACCOUNT;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    REDIS_URL: redisUrl ?? '',
    WECHAT_API_BASE: simUrl,
    WECOM_API_BASE: simUrl,
    WECHAT_ACCOUNTS_FILE: demoAccountsFile(),
    REPLY_RULES_FILE: process.env.REPLY_RULES_FILE ?? 'examples/rules-ai.yaml',
    // Text no rule takes is answered by the simulator's fake model; AI_BASE_URL (and AI_MODEL) point elsewhere.
    AI_BASE_URL: process.env.AI_BASE_URL ?? `${simUrl}/v1`,
    AI_MODEL: process.env.AI_MODEL ?? (process.env.AI_BASE_URL ? await firstModel(process.env) : 'wx-kf-fake'),
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  };
  await runService(
    'wx-kf demo',
    async (config, logger) => {
      const service = await start(config, logger);
      const { ingress, admin } = service;
      // (On one Redis: the demo's own, or REDIS_URL's.)
      const stopAnnouncing = redisUrl ? await announceHandoffs(redisUrl) : async () => {};
      console.log(
        [
          '',
          'wx-kf DEMO: no WeChat credentials are configured, so replies go to a SIMULATOR, not to WeChat.',
          `  ingress    ${ingress.url}/wechat/${a.appId}   (the URL WeChat would push to)`,
          `  wecom      ${ingress.url}/wechat/${SANDBOX_WECOM.corpId}   (a WeCom customer-service corp's callback: 微信客服)`,
          `  simulator  ${simUrl}   (fake WeChat API; recorded replies: ${simUrl}/__sim/messages)`,
          `  model      ${env.AI_BASE_URL}   (${env.AI_BASE_URL?.startsWith(simUrl) ? "the simulator's FAKE model; AI_BASE_URL and AI_MODEL point at a real one" : env.AI_MODEL})`,
          `  redis      ${redisUrl ?? `${config.redis.kind} (${config.redis.shards} shards)`}`,
          admin
            ? `  admin      ${admin.url}/ui   (dashboard; /metrics)`
            : '  admin      off (set ADMIN_PASSWORD to get the dashboard and /metrics)',
          '',
          'Push a message as WeChat would, in another terminal:',
          '  pnpm sim push --text hello          (the reply appears below as "[simulator] custom/send")',
          '  pnpm sim push --text "order 42" --format json',
          '  pnpm sim push --text "what do you sell?"   (answered by the model; "#long 3000" for a long answer)',
          '  pnpm sim push --text "#human"           (the model hands you to a person: the handoff opens)',
          '  pnpm sim push --text 人工            (answered with transfer_customer_service: the user goes to a human)',
          '  pnpm sim push --type kf_close_session   (the agent closes the session: the bot answers again)',
          '  pnpm sim push --wecom --text hello     (WeCom: a notice, then a worker pulls; the reply is "[simulator] kf/send_msg")',
          'Set WECHAT_APP_ID, WECHAT_APP_SECRET and WECHAT_TOKEN (see .env.example) to serve a real account.',
          '',
        ].join('\n'),
      );
      return {
        close: async () => {
          await stopAnnouncing();
          await service.close();
          await sim.close();
          await privateRedis?.dispose();
        },
      };
    },
    { env },
  );
}
