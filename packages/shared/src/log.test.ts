import { spawn } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createLogger } from './log.js';

const LOG_MODULE = fileURLToPath(new URL('./log.ts', import.meta.url));

/** Runs a script with a stdout logger in its own process; resolves what it wrote to stdout, in order. */
function run(script: string): Promise<string[]> {
  const source = `import { writeSync } from 'node:fs';
import { createLogger } from ${JSON.stringify(LOG_MODULE)};
const logger = createLogger('log-test');
const mark = (text) => writeSync(1, text + '\\n'); // straight to stdout, past the logger's buffer
${script}`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', source], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve(out.split('\n').filter(Boolean)) : reject(new Error(`exit ${code}: ${out}`)),
    );
  });
}

const messages = (lines: string[]) => lines.map((l) => (l.startsWith('{') ? JSON.parse(l).msg : l));

describe('stdout logging (written in batches)', () => {
  it('writes a lone info line within its flush interval, without waiting for the buffer to fill', async () => {
    const lines = await run(`logger.info('hello'); setTimeout(() => { mark('MARK'); process.exit(0); }, 1000);`);
    expect(messages(lines)).toEqual(['hello', 'MARK']);
  });

  it('writes warnings and errors at once', async () => {
    // The event loop never turns between the warning and the mark: only an immediate write puts it first.
    const lines = await run(`logger.info('before'); logger.warn('careful'); mark('MARK'); process.exit(0);`);
    expect(messages(lines)).toEqual(['before', 'careful', 'MARK']);
  });

  it('loses nothing buffered when the process exits', async () => {
    const lines = await run(`for (let i = 0; i < 500; i++) logger.info({ i }, 'line'); process.exit(0);`);
    expect(lines.map((l) => JSON.parse(l).i)).toEqual(Array.from({ length: 500 }, (_, i) => i));
  });

  it('still redacts secrets', async () => {
    const lines = await run(`logger.info({ appSecret: 's3cr3t', account: { token: 't0k3n' } }, 'config');`);
    expect(lines.join('\n')).not.toMatch(/s3cr3t|t0k3n/);
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({ appSecret: '[redacted]', account: { token: '[redacted]' } });
  });
});

describe('secret redaction', () => {
  const capture = () => {
    const stream = new PassThrough();
    const lines: Record<string, unknown>[] = [];
    stream.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
    });
    return { logger: createLogger('redaction', { destination: stream }), lines, text: () => JSON.stringify(lines) };
  };

  it('censors secrets at the top level, two levels down, in errors and in child bindings', async () => {
    const { logger, lines, text } = capture();
    const failure = Object.assign(new Error('token request refused'), { secret: 'err-s3cret', errcode: 40125 });
    logger.child({ appId: 'wx1', token: 'bound-t0ken' }).warn(
      {
        access_token: 'ACCESS_T0KEN',
        account: { appId: 'wx1', appSecret: 'app-s3cret', aesKey: 'a3s-key', ai: { apiKey: 'sk-m0del' } },
        req: { method: 'POST', headers: { authorization: 'Basic c2VjcmV0', host: 'x' }, query: { nonce: 'n' } },
        err: failure,
        replies: ['{"token":"in-an-array-only-as-text"}'],
      },
      'something',
    );
    await new Promise((r) => setImmediate(r));
    expect(text()).not.toMatch(/ACCESS_T0KEN|app-s3cret|a3s-key|sk-m0del|c2VjcmV0|err-s3cret|bound-t0ken/);
    expect(lines[0]).toMatchObject({
      appId: 'wx1',
      token: '[redacted]',
      access_token: '[redacted]',
      account: { appId: 'wx1', appSecret: '[redacted]', aesKey: '[redacted]' },
      req: { method: 'POST', headers: { authorization: '[redacted]', host: 'x' }, query: '[redacted]' },
      err: { message: 'token request refused', errcode: 40125, secret: '[redacted]', type: 'Error' },
    });
    expect(String((lines[0]?.err as { stack?: string } | undefined)?.stack)).toContain('token request refused');
  });

  it('leaves a line without secrets as it is', async () => {
    const { logger, lines } = capture();
    const fields = { appId: 'wx1', msgKey: 'wx1-m6054768590064713728', replies: 1 };
    logger.info(fields, 'replies sent');
    await new Promise((r) => setImmediate(r));
    expect(lines[0]).toMatchObject(fields);
  });
});
