import { Writable } from 'node:stream';

const isLogRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** A destination for a pino logger that keeps every line, for tests that read the logs. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];

  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.lines.push(...chunk.toString().split('\n').filter(Boolean));
    done();
  }

  /** The lines as the objects pino wrote (a line that is not a JSON object throws). */
  get records(): Record<string, unknown>[] {
    return this.lines.map((line) => {
      const record: unknown = JSON.parse(line);
      if (!isLogRecord(record)) throw new Error(`not a log record: ${line.slice(0, 200)}`);
      return record;
    });
  }

  get text(): string {
    return this.lines.join('\n');
  }
}
