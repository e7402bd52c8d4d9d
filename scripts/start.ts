// `pnpm start`: ingress, worker and admin in one process. With no WeChat credentials configured, the demo
// (demo.ts: the simulator, a sandbox account, a private Redis), loaded only then.
import { startAdmin } from '@wx-kf/admin';
import { startIngress } from '@wx-kf/ingress';
import { type Config, hasCredentials, loadDotEnv } from '@wx-kf/shared/config';
import type { Logger } from '@wx-kf/shared/log';
import { runService } from '@wx-kf/shared/service';
import { startWorker } from '@wx-kf/worker';

loadDotEnv();

/** Ingress, worker and (with ADMIN_PASSWORD) the admin listener, whose /metrics cover both. */
export async function startAll(config: Config, logger: Logger) {
  const ingress = await startIngress(config, logger.child({ part: 'ingress' }));
  // One registry for both: metrics they share (wxkf_handoffs_total) are one series, not a name clash.
  const worker = await startWorker(config, logger.child({ part: 'worker' }), { registry: ingress.registry });
  const admin = await startAdmin(config, logger.child({ part: 'admin' }), { registries: [ingress.registry] });
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
  const { demo } = await import('./demo.js');
  await demo(startAll);
}
