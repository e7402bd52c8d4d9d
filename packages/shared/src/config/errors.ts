/** Configuration that cannot be used: one line per problem, printed at start before exiting with code 1. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}

/** Prints each problem as one line `<tool>: config: <problem>` on stderr (what every command does at start). */
export function printConfigError(tool: string, error: ConfigError): void {
  for (const problem of error.problems) console.error(`${tool}: config: ${problem}`);
}
