// `pnpm start`: ingress and worker in one process. With no WeChat credentials configured, the demo:
// the simulator on loopback, a sandbox account, and a private Redis when none is running.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAdmin } from '@wx-kf/admin';
import { startIngress } from '@wx-kf/ingress';
import { type Config, hasCredentials, type Logger, loadDotEnv, runService } from '@wx-kf/shared';
import { answersPing, freePort, hasRedisServer } from '@wx-kf/testkit';
import { DEFAULT_SIM_PORT, SANDBOX_ACCOUNT, Simulator } from '@wx-kf/wechat-sim';
import { startWorker } from '@wx-kf/worker';

loadDotEnv();

/** Ingress, worker and (with ADMIN_PASSWORD) the admin listener, whose /metrics cover both. */
async function startAll(config: Config, logger: Logger) {
  const ingress = await startIngress(config, logger.child({ part: 'ingress' }));
  const worker = await startWorker(config, logger.child({ part: 'worker' }));
  const admin = await startAdmin(config, logger.child({ part: 'admin' }), {
    registries: [ingress.registry, worker.registry],
  });
  // Ctrl-C reaches this process twice: from the terminal, and again from pnpm, which forwards it to the
  // script it runs. runService stops on the first (its handlers follow this return); these keep the second
  // from killing the process mid-drain, which pnpm reports as "ELIFECYCLE Command failed". Added only now, so
  // that a signal during start-up still ends the process at once.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => {});
  return {
    ingress,
    admin,
    close: async () => {
      await ingress.close();
      await worker.close();
      await admin?.close();
    },
  };
}

if (hasCredentials()) {
  await runService('wx-kf', startAll);
} else {
  await demo();
}

async function demo(): Promise<void> {
  let redisUrl = process.env.REDIS_URL;
  let privateRedis: { url: string; dispose(): Promise<void> } | undefined;
  if (!redisUrl) {
    if (await answersPing(6379)) {
      redisUrl = 'redis://127.0.0.1:6379';
    } else if (hasRedisServer()) {
      privateRedis = await startPrivateRedis();
      redisUrl = privateRedis.url;
      console.log(
        `[demo] no Redis on 127.0.0.1:6379: started a private redis-server at ${redisUrl} (data is thrown away on exit)`,
      );
    } else {
      console.error(
        '[demo] no Redis: set REDIS_URL, or run `docker compose up -d redis`, or install redis-server (e.g. apt-get install -y redis-server)',
      );
      process.exit(1);
    }
  }
  const simPort = Number(process.env.SIM_PORT ?? DEFAULT_SIM_PORT);
  const sim = new Simulator({
    accounts: [SANDBOX_ACCOUNT],
    onMessage: (m) => console.log(`[simulator] custom/send → ${m.touser}: ${JSON.stringify(m.body)}`),
  });
  const simUrl = await sim.listen(simPort);
  const a = SANDBOX_ACCOUNT;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    REDIS_URL: redisUrl,
    WECHAT_API_BASE: simUrl,
    WECHAT_APP_ID: a.appId,
    WECHAT_APP_SECRET: a.appSecret,
    WECHAT_TOKEN: a.token,
    WECHAT_AES_KEY: a.aesKey,
    REPLY_RULES_FILE: process.env.REPLY_RULES_FILE ?? 'examples/rules.yaml',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  };
  await runService(
    'wx-kf demo',
    async (config, logger) => {
      const service = await startAll(config, logger);
      const { ingress, admin } = service;
      console.log(
        [
          '',
          'wx-kf DEMO: no WeChat credentials are configured, so replies go to a SIMULATOR, not to WeChat.',
          `  ingress    ${ingress.url}/wechat/${a.appId}   (the URL WeChat would push to)`,
          `  simulator  ${simUrl}   (fake WeChat API; recorded replies: ${simUrl}/__sim/messages)`,
          `  redis      ${redisUrl}`,
          admin
            ? `  admin      ${admin.url}/ui   (dashboard; /metrics)`
            : '  admin      off (set ADMIN_PASSWORD to get the dashboard and /metrics)',
          '',
          'Push a message as WeChat would, in another terminal:',
          '  pnpm sim push --text hello          (the reply appears below as "[simulator] custom/send")',
          '  pnpm sim push --text "order 42" --format json',
          '  pnpm sim push --text 人工            (answered with transfer_customer_service)',
          'Set WECHAT_APP_ID, WECHAT_APP_SECRET and WECHAT_TOKEN (see .env.example) to serve a real account.',
          '',
        ].join('\n'),
      );
      return {
        close: async () => {
          await service.close();
          await sim.close();
          await privateRedis?.dispose();
        },
      };
    },
    { env },
  );
}

/**
 * A throw-away redis-server for the demo, in a process group of its own: Ctrl-C signals the terminal's whole
 * foreground group, and a Redis that died with it would leave the demo's drain waiting for it until the grace
 * period ran out. The demo stops it once it has drained, or when it exits in any other way.
 */
async function startPrivateRedis(): Promise<{ url: string; dispose(): Promise<void> }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'wx-kf-demo-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'];
  const child = spawn('redis-server', args, { stdio: 'ignore', detached: true });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', kill);
  const dispose = async () => {
    kill();
    await exited;
  };
  const deadline = Date.now() + 10_000;
  while (!(await answersPing(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await dispose();
      throw new Error(`the private redis-server did not start on port ${port}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return { url: `redis://127.0.0.1:${port}`, dispose };
}
