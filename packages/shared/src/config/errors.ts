/** Configuration that cannot be used: one line per problem, printed at start before exiting with code 1. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}
