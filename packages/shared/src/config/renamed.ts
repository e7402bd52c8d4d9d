/**
 * Variables renamed so that a duration's name says its unit, old name → new name (same value, same unit). The old
 * names are still read for one release: one warning each at start, and setting both names is refused.
 */
export const RENAMED_VARIABLES: Readonly<Record<string, string>> = {
  WECHAT_TIMESTAMP_TOLERANCE: 'WECHAT_TIMESTAMP_TOLERANCE_SECONDS',
  HANDOFF_IDLE_TIMEOUT: 'HANDOFF_IDLE_TIMEOUT_SECONDS',
};

/** The environment under the new names, and for each new name read from an old one, that old name. */
export interface RenamedEnv {
  env: NodeJS.ProcessEnv;
  oldNameOf: ReadonlyMap<string, string>;
}

/**
 * Moves each old name's value to its new name. `warnings` gets one line per old name in use, `problems` one per
 * old name set together with its new one.
 */
export function withRenamedVariables(env: NodeJS.ProcessEnv, problems: string[], warnings: string[]): RenamedEnv {
  const out = { ...env };
  const oldNameOf = new Map<string, string>();
  for (const [old, name] of Object.entries(RENAMED_VARIABLES)) {
    if (env[old] === undefined) continue;
    delete out[old];
    if (env[name] !== undefined) {
      problems.push(`${old}: renamed ${name}; set only ${name}, not both`);
      continue;
    }
    out[name] = env[old];
    oldNameOf.set(name, old);
    warnings.push(`${old} is deprecated: rename it ${name} (same value); the old name goes in the next release`);
  }
  return { env: out, oldNameOf };
}

/** A variable's name as the operator wrote it: `OLD (now NEW)` when the value came under its old name. */
export function writtenName(name: string, oldNameOf: ReadonlyMap<string, string>): string {
  const old = oldNameOf.get(name);
  return old ? `${old} (now ${name})` : name;
}
