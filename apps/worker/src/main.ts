import { runService } from '@wx-kf/shared';
import { startWorker } from './worker.js';

await runService('worker', startWorker);
