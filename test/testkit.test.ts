import { PassThrough } from 'node:stream';
import { collectLines } from '@wx-kf/testkit';
import { describe, expect, it } from 'vitest';

// The cross-process tests read a service's log lines as its pipe delivers them; a line cut between two reads
// must still be one line, or a test looking for it fails on a busy machine.
describe('collectLines', () => {
  it('keeps a line cut between chunks, inside a character too, as one line', async () => {
    const stream = new PassThrough();
    const lines: string[] = [];
    collectLines(stream, lines);
    const line = Buffer.from('{"msg":"handoff moved","reply":"收到"}\n');
    const cut = line.indexOf(Buffer.from('收')) + 1; // between the first and second byte of 收
    stream.write(line.subarray(0, 10));
    stream.write(line.subarray(10, cut));
    await new Promise((r) => setImmediate(r));
    expect(lines).toEqual([]);
    stream.write(Buffer.concat([line.subarray(cut), Buffer.from('second\n\nlast without newline')]));
    await new Promise((r) => setImmediate(r));
    expect(lines).toEqual(['{"msg":"handoff moved","reply":"收到"}', 'second']);
    stream.end();
    await new Promise((r) => stream.once('end', r));
    expect(lines).toEqual(['{"msg":"handoff moved","reply":"收到"}', 'second', 'last without newline']);
  });
});
