/** Who waits for each account's next token notice (a store or an invalidation announced on TOKEN_EVENTS). */
export type NoticeWaiters = Map<string, Set<() => void>>;

/** A wait for an account's next notice: `wait` returns at once if it came already, else when it comes or after `ms`. */
export interface ExpectedNotice {
  wait: (ms: number) => Promise<void>;
  /** Stops listening. */
  cancel: () => void;
}

/** Starts listening for the account's next notice (before looking, so a notice sent meanwhile is not missed). */
export function expectNotice(waiters: NoticeWaiters, appId: string): ExpectedNotice {
  let heard = false;
  let wake: (() => void) | undefined;
  const set = waiters.get(appId) ?? new Set();
  const onNotice = () => {
    heard = true;
    wake?.();
  };
  set.add(onNotice);
  waiters.set(appId, set);
  return {
    wait: (ms) =>
      heard
        ? Promise.resolve()
        : new Promise((resolve) => {
            const timer = setTimeout(resolve, ms);
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          }),
    cancel: () => {
      set.delete(onNotice);
      if (set.size === 0 && waiters.get(appId) === set) waiters.delete(appId);
    },
  };
}

/** Wakes everyone waiting for the account's notice. */
export function wakeWaiters(waiters: NoticeWaiters, appId: string): void {
  const waiting = waiters.get(appId);
  waiters.delete(appId);
  for (const wake of waiting ?? []) wake();
}
