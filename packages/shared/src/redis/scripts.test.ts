import { readdirSync, readFileSync } from 'node:fs';
import { isolatedRedisUrl } from '@wx-kf/testkit';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from './index.js';
import { defineScript, loadScript, reply } from './scripts.js';

const LUA_DIR = new URL('../../lua/', import.meta.url);
const scripts = readdirSync(LUA_DIR).filter((f) => f.endsWith('.lua'));
const header = (file: string, kind: string) =>
  new RegExp(`^--- ${kind}: (.*)$`, 'm').exec(readFileSync(new URL(file, LUA_DIR), 'utf8'))?.[1]?.split(/\s+/) ?? [];

let redis: Redis;
beforeAll(async () => {
  redis = createRedis(await isolatedRedisUrl(), 'client');
});
afterAll(() => redis.disconnect());

describe('Redis scripts as files', () => {
  it.each(scripts)(
    '%s compiles in Redis with its includes, and names every key and argument it reads',
    async (file) => {
      const name = file.replace(/\.lua$/, '');
      const lua = loadScript(name, header(file, 'KEYS'), header(file, 'ARGV'));
      expect(await redis.script('LOAD', lua)).toMatch(/^[0-9a-f]{40}$/);
      // Past the bound locals, the body reads keys and arguments only by name.
      const body = lua.replace(/^local .* = (KEYS|ARGV)\[1\].*\n/gm, '');
      expect(body).not.toMatch(/\b(KEYS|ARGV)\[/);
    },
  );

  it('refuses a caller whose key or argument names differ from the file header', () => {
    expect(() => loadScript('take', ['window'], ['at'])).toThrow(
      'lua/take.lua: ARGV are "now", its caller passes "at"',
    );
    expect(() => loadScript('take', ['user'], ['now'])).toThrow(/KEYS are "window"/);
  });

  it('runs by name, and again after Redis forgot its scripts (SCRIPT FLUSH)', async () => {
    const release = defineScript('release-lock', ['lock'], ['owner']);
    await redis.set('{t}:lock', 'me');
    expect(reply.int(await release(redis, { lock: '{t}:lock' }, { owner: 'someone else' }))).toBe(0);
    await redis.script('FLUSH');
    expect(reply.int(await release(redis, { lock: '{t}:lock' }, { owner: 'me' }))).toBe(1);
    expect(await redis.exists('{t}:lock')).toBe(0);
  });

  it('reads replies without casts, refusing a shape it does not expect', () => {
    expect(reply.int('12')).toBe(12);
    expect(reply.text(null)).toBe('');
    expect(reply.optionalText(null)).toBeUndefined();
    expect(() => reply.list('x')).toThrow(TypeError);
    expect(() => reply.int('x')).toThrow(TypeError);
  });
});
