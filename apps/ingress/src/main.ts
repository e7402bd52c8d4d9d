import { runService } from '@wx-kf/shared/service';
import { startIngress } from './server.js';

// The ingress only: the admin listener is its own process (`pnpm start:admin`); `pnpm start` composes them.
await runService('ingress', startIngress);
