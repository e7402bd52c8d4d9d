/**
 * Fixed-window counters per client, in this process's memory: enough for one admin listener (the limits
 * stop guessing and floods, they are not a quota). Bounded: at most `maxClients` windows are kept.
 */
export class WindowCounter {
  private readonly windows = new Map<string, { count: number; resetAt: number }>();

  constructor(
    readonly limit: number,
    readonly windowMs: number,
    private readonly maxClients = 10_000,
  ) {}

  private current(client: string, now: number) {
    const window = this.windows.get(client);
    if (window && window.resetAt > now) return window;
    if (window) this.windows.delete(client);
    return undefined;
  }

  /** Seconds until `client` may try again, or 0 when it is under the limit. */
  retryAfter(client: string, now = Date.now()): number {
    const window = this.current(client, now);
    return window && window.count >= this.limit ? Math.ceil((window.resetAt - now) / 1000) : 0;
  }

  /** Counts one event for `client`; returns the count in the current window. */
  add(client: string, now = Date.now()): number {
    let window = this.current(client, now);
    if (!window) {
      if (this.windows.size >= this.maxClients) this.evict(now);
      window = { count: 0, resetAt: now + this.windowMs };
      this.windows.set(client, window);
    }
    window.count++;
    return window.count;
  }

  private evict(now: number): void {
    for (const [client, window] of this.windows) if (window.resetAt <= now) this.windows.delete(client);
    // Still full: drop the oldest windows (a Map iterates in insertion order).
    for (const client of this.windows.keys()) {
      if (this.windows.size < this.maxClients) break;
      this.windows.delete(client);
    }
  }
}
