import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, ServiceProcess } from '@wx-kf/testkit';
import { buildPush, deliverPush, type Simulator, sampleMessage } from '@wx-kf/wechat-sim';

/** Accounts of the store tests: one hot one (encrypted pushes) and four quieter ones (plaintext pushes). */
export const HOT = {
  appId: 'wxhotaccount00001',
  appSecret: 'hot-secret',
  token: 'hotToken',
  aesKey: 'HotAccountForTheStoreTestsEncodingAESKey000',
};
export const QUIET = [1, 2, 3, 4].map((i) => ({
  appId: `wxquietaccount0${i}`,
  appSecret: `quiet-${i}`,
  token: `quietToken${i}`,
}));
export const ACCOUNTS = [HOT, ...QUIET];

const dir = mkdtempSync(join(tmpdir(), 'wx-kf-store-'));
const accountsFile = join(dir, 'accounts.json');
writeFileSync(accountsFile, JSON.stringify({ accounts: ACCOUNTS }));
const rules = join(dir, 'rules.json');
writeFileSync(rules, JSON.stringify({ fallback: [{ msgtype: 'text', text: { content: 'got {{Content}}' } }] }));

/** The environment of every process: the accounts, the rules, the simulator and the given Redis settings. */
export const serviceEnv = (sim: Simulator, redis: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({
  ...redis,
  WECHAT_ACCOUNTS_FILE: accountsFile,
  REPLY_RULES_FILE: rules,
  WECHAT_API_BASE: sim.url,
  WORKER_CONCURRENCY: '32',
  WORKER_LOCK_DURATION_MS: '2000',
  HOST: '127.0.0.1',
});

/** A real ingress and `workers` worker processes on the given Redis; stopped by `stop`. */
export async function startServices(sim: Simulator, redis: NodeJS.ProcessEnv, workers = 2) {
  const port = await freePort();
  const env = serviceEnv(sim, redis);
  const ingress = ServiceProcess.start('ingress', { ...env, PORT: String(port) });
  const started = Array.from({ length: workers }, () => ServiceProcess.start('worker', env));
  const all = [ingress, ...started];
  try {
    await Promise.all([ingress.waitFor('ingress listening'), ...started.map((w) => w.waitFor('worker started'))]);
  } catch (error) {
    await Promise.all(all.map((p) => p.stop('SIGKILL')));
    throw error;
  }
  return {
    ingress,
    workers: started,
    url: (appId: string) => `http://127.0.0.1:${port}/wechat/${appId}`,
    stop: () => Promise.all(all.map((p) => p.stop('SIGKILL'))),
  };
}

/** One push from `user` of `account` (encrypted for the hot account, plaintext for the others). */
export function push(account: (typeof ACCOUNTS)[number], user: string) {
  return buildPush({
    account,
    message: sampleMessage('text', { fromUser: user, content: user }),
    mode: 'aesKey' in account ? 'safe' : 'plain',
    format: 'xml',
  });
}

/** Answers per user: the HTTP status the ingress gave (WeChat retries anything but 200). */
export type Answers = Map<string, number | string>;

/**
 * Pushes from new users of the hot account, `concurrency` at a time, once each (no retries: the test counts
 * what each first answer promised), until `stop()` says so.
 */
export async function steadyLoad(url: string, answers: Answers, stop: () => boolean, concurrency = 8): Promise<void> {
  let n = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, lane) => {
      while (!stop()) {
        const user = `o_load_${lane}_${n++}`;
        const [delivery] = await deliverPush(url, push(HOT, user), { timeoutMs: 4000 });
        answers.set(user, delivery?.status ?? 'none');
        if (delivery?.status !== 200) await new Promise((r) => setTimeout(r, 20));
      }
    }),
  );
}

/** Users who got a reply from the simulator. */
export function replied(sim: Simulator): Set<string> {
  return new Set(sim.state.messages.map((m) => m.touser));
}

export async function until(what: string, check: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface FailoverRun {
  label: string;
  /** The hot account's ingress URL. */
  url: string;
  sim: Simulator;
  /** Kills the primary (SIGKILL). */
  kill: () => Promise<void>;
  /** Freezes the primary's replica for a while before the kill: writes answered in that time are not on it. */
  freezeReplica: () => void;
  /** After the first refusal: e.g. restart the killed server (it rejoins as a replica). */
  afterOutage?: () => Promise<void>;
  /** Whether a user's pushes went to the killed primary (their recovery is what is waited for). */
  affected: (user: string) => boolean;
  /** `replicated`: every push answered 200 must be replied to; `local`: the number lost is printed. */
  durability: 'local' | 'replicated';
  /** Prints where the lost users' jobs are, if anywhere. */
  explain?: (users: string[]) => Promise<void>;
}

/**
 * A steady push load through the ingress while the primary dies: some pushes are refused (never hang), pushes
 * to the failed-over primary succeed again by themselves, and every push answered 200 is replied to by the
 * workers (or, with `local` durability, the loss is counted and printed). Returns the counts.
 */
export async function failoverRun(run: FailoverRun) {
  const answers: Answers = new Map();
  let stopping = false;
  const load = steadyLoad(run.url, answers, () => stopping);
  const ok = () => [...answers.values()].filter((s) => s === 200).length;
  try {
    await until(`${run.label}: 50 pushes stored before the kill`, () => ok() >= 50);
    // The replica falls behind (frozen), pushes go on for a moment, then the primary dies: what the primary
    // alone had is gone, and only pushes a replica confirmed (replicated durability) are sure to survive.
    run.freezeReplica();
    const frozenAt = answers.size;
    await until(`${run.label}: pushes answered while the replica is frozen`, () => answers.size >= frozenAt + 16, 5000);
    const killedAt = Date.now();
    await run.kill();
    const before = new Set(answers.keys());
    const refusedAfterKill = () => [...answers].filter(([u, s]) => !before.has(u) && s !== 200 && run.affected(u));
    await until(`${run.label}: a push refused while the primary is down`, () => refusedAfterKill().length > 0, 15_000);
    const firstRefusal = new Set(answers.keys());
    await run.afterOutage?.();
    await until(
      `${run.label}: pushes to the failed-over shard stored again`,
      () => [...answers].filter(([u, s]) => !firstRefusal.has(u) && s === 200 && run.affected(u)).length >= 10,
      60_000,
    );
    stopping = true;
    await load;
    const succeeded = [...answers].filter(([, s]) => s === 200).map(([u]) => u);
    const refused = answers.size - succeeded.length;
    const missing = () => succeeded.filter((u) => !replied(run.sim).has(u));
    const settle = run.durability === 'replicated' ? 60_000 : 10_000;
    await until(`${run.label}: every stored push replied to`, () => missing().length === 0, settle).catch(() => {});
    const lost = missing().length;
    if (lost > 0) await run.explain?.(missing());
    console.log(
      `[${run.label}] durability=${run.durability}: ${answers.size} pushes, ${succeeded.length} answered success, ` +
        `${refused} refused (503/timeout), ${lost} answered success but never replied to (lost); ` +
        `outage to recovery ${Date.now() - killedAt} ms`,
    );
    return { pushes: answers.size, succeeded: succeeded.length, refused, lost };
  } finally {
    stopping = true;
    await load;
  }
}
