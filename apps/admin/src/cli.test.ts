import { describe, expect, it } from 'vitest';

describe('queue CLI module', () => {
  it('has no side effects when imported: no Redis connection, no configuration, no exit', async () => {
    // The old module read REDIS_URL and connected at import; a bad URL made it call process.exit(1).
    const saved = process.env.REDIS_URL;
    process.env.REDIS_URL = 'not a url';
    try {
      const cli = await import('./cli.js');
      expect(cli.main).toBeTypeOf('function');
      expect(cli.parseDuration('1h')).toBe(3_600_000);
      expect(process.exitCode ?? 0).toBe(0);
    } finally {
      process.env.REDIS_URL = saved;
    }
  });
});
