import { readFileSync } from 'node:fs';
import type { RedisClient } from './index.js';

/**
 * wx-kf's Redis scripts, one `.lua` file each in `packages/shared/lua/` (as BullMQ keeps `src/commands/*.lua`).
 * A file names its keys and arguments in two header lines, `--- KEYS: a b` and `--- ARGV: x y`; the loader
 * turns them into Lua locals (`local a, b = KEYS[1], KEYS[2]`), so the script reads by name, and checks them
 * against the names its TypeScript wrapper passes. `--- @include "name"` inserts `lua/includes/name.lua`.
 */
const LUA_DIR = new URL('../../lua/', import.meta.url); // the same from src/redis and dist/redis

const read = (path: string) => readFileSync(new URL(path, LUA_DIR), 'utf8');

/** A script's text, its includes inserted and its header's names bound; throws when the header disagrees. */
export function loadScript(file: string, keys: readonly string[], args: readonly string[]): string {
  const text = read(`${file}.lua`);
  const header = (kind: 'KEYS' | 'ARGV') => new RegExp(`^--- ${kind}: (.*)$`, 'm').exec(text)?.[1]?.split(/\s+/) ?? [];
  for (const [kind, names] of [
    ['KEYS', keys],
    ['ARGV', args],
  ] as const) {
    if (header(kind).join(' ') !== names.join(' ')) {
      throw new Error(
        `lua/${file}.lua: ${kind} are "${header(kind).join(' ')}", its caller passes "${names.join(' ')}"`,
      );
    }
  }
  const bind = (names: readonly string[], table: string) =>
    names.length ? `local ${names.join(', ')} = ${names.map((_, i) => `${table}[${i + 1}]`).join(', ')}\n` : '';
  const body = text.replace(/^--- @include "([\w-]+)"$/gm, (_, name: string) => read(`includes/${name}.lua`));
  return bind(keys, 'KEYS') + bind(args, 'ARGV') + body;
}

/** What a script is called with: a value per key and per argument, by name. */
export type ScriptCall<K extends string, A extends string> = [
  keys: Record<K, string>,
  args: Record<A, string | number>,
];

type Commands = Record<string, (...values: (string | number)[]) => Promise<unknown>>;

/** A script: call it with (connection, keys by name, arguments by name); `register` it on a connection first. */
export interface Script<K extends string, A extends string> {
  (redis: RedisClient, ...call: ScriptCall<K, A>): Promise<unknown>;
  /**
   * Registers the script on `redis` (once per connection: ioredis's `defineCommand`, so EVALSHA, loaded again
   * after a SCRIPT FLUSH or on a new Cluster node). Do it when the connection's user is built, before any
   * command: an auto-pipeline already begun in this tick would not know a command defined after it.
   */
  register(redis: RedisClient): void;
}

/** A script from `lua/<file>.lua` with its keys and arguments by name; every key of one call must share a slot. */
export function defineScript<K extends string, A extends string>(
  file: string,
  keys: readonly K[],
  args: readonly A[],
): Script<K, A> {
  const command = `wxkf:${file}`;
  let lua: string | undefined;
  const register = (redis: RedisClient) => {
    if (command in redis) return;
    lua ??= loadScript(file, keys, args);
    redis.defineCommand(command, { numberOfKeys: keys.length, lua });
  };
  const run = (redis: RedisClient, keyValues: Record<K, string>, argValues: Record<A, string | number>) => {
    register(redis);
    const command_ = (redis as unknown as Commands)[command] as Commands[string];
    return command_.call(redis, ...keys.map((k) => keyValues[k]), ...args.map((a) => argValues[a]));
  };
  return Object.assign(run, { register });
}

/** Deletes a lock or claim only while it still holds its owner's value (lua/release-lock.lua); replies 1/0. */
export const releaseLockScript = defineScript('release-lock', ['lock'], ['owner']);

/** Reply readers: a script's reply checked where it is used, never cast. */
export const reply = {
  /** The reply as an array (a Lua table), or a TypeError. */
  list(value: unknown): unknown[] {
    if (!Array.isArray(value)) throw new TypeError(`script reply is not a list: ${typeof value}`);
    return value;
  },
  /** An integer reply (a Lua number, or its decimal string). */
  int(value: unknown): number {
    const n = typeof value === 'number' ? value : Number(value);
    if (!Number.isFinite(n)) throw new TypeError(`script reply is not a number: ${String(value)}`);
    return n;
  },
  /** A string reply; '' for nil. */
  text(value: unknown): string {
    if (value === null || value === undefined) return '';
    if (typeof value === 'string') return value;
    if (typeof value === 'number') return String(value);
    throw new TypeError(`script reply is not a string: ${typeof value}`);
  },
  /** A string reply, or undefined for nil. */
  optionalText(value: unknown): string | undefined {
    return value === null || value === undefined ? undefined : reply.text(value);
  },
};
