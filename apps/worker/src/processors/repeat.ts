import type { Logger } from '@wx-kf/shared/log';

/**
 * Runs `task` every `everyMs` in the background, never two at once; a failure is logged at warn (`failed`, with
 * the error) and the next round tries again. Returns a stop function.
 */
export function repeat(everyMs: number, task: () => Promise<void>, logger: Logger, failed: string): () => void {
  let running = false;
  const timer = setInterval(async () => {
    if (running) return;
    running = true;
    try {
      await task();
    } catch (error) {
      logger.warn({ err: error instanceof Error ? error.message : String(error) }, failed);
    } finally {
      running = false;
    }
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
