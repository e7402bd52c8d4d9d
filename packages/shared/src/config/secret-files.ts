import { readFileSync } from 'node:fs';
import { readErrorCode } from './file.js';

/** Secrets that may instead be read from a file named by `<NAME>_FILE` (compose/Kubernetes secrets). */
export const SECRET_VARIABLES = [
  'REDIS_URL',
  'REDIS_PASSWORD',
  'REDIS_SENTINEL_PASSWORD',
  'WECHAT_APP_SECRET',
  'WECHAT_TOKEN',
  'WECHAT_AES_KEY',
  'ADMIN_PASSWORD',
  'ADMIN_API_KEY',
  'AI_API_KEY',
] as const;

/** The environment with every `<NAME>_FILE` replaced by the file's content (trailing newline trimmed). */
export function withSecretFiles(env: NodeJS.ProcessEnv, problems: string[]): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const name of SECRET_VARIABLES) {
    const file = env[`${name}_FILE`];
    if (!file) continue;
    if (env[name]) {
      problems.push(`${name}_FILE: set ${name} or ${name}_FILE, not both`);
      continue;
    }
    try {
      out[name] = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      problems.push(`${name}_FILE ${file}: cannot be read (${readErrorCode(error)})`);
    }
  }
  return out;
}
