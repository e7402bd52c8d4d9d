import { runService } from '@wx-kf/shared/service';
import { startWorker } from './worker.js';

await runService('worker', startWorker);
