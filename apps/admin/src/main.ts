import { runService } from '@wx-kf/shared/service';
import { startAdmin } from './admin.js';

await runService('admin', async (config, logger) => {
  const admin = await startAdmin(config, logger);
  if (!admin) {
    console.error('admin: config: ADMIN_PASSWORD: required to run the admin listener');
    process.exit(1);
  }
  return admin;
});
