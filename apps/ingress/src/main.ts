import { runService } from '@wx-kf/shared';
import { startIngress } from './server.js';

await runService('ingress', startIngress);
