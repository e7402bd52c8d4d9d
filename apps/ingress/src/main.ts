import { startAdmin } from '@wx-kf/admin';
import { runService } from '@wx-kf/shared';
import { startIngress } from './server.js';

await runService('ingress', async (config, logger) => {
  const ingress = await startIngress(config, logger);
  // With ADMIN_PASSWORD set, this process also serves the admin listener, whose /metrics include the ingress's.
  const admin = await startAdmin(config, logger, { registries: [ingress.registry] });
  return {
    close: async () => {
      await ingress.close();
      await admin?.close();
    },
  };
});
