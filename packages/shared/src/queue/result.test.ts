import { describe, expect, it } from 'vitest';
import { INBOUND_ACTIONS, readInboundResult } from './result.js';

describe('readInboundResult', () => {
  it('reads every current outcome as it was written', () => {
    const requeued = { action: 'requeued', replies: 2, sent: 1, outboundJobId: 'a-m1-r', reason: 'window closed' };
    expect(readInboundResult(requeued)).toEqual(requeued);
    expect(readInboundResult({ action: 'replied', replies: 3 })).toEqual({ action: 'replied', replies: 3 });
    for (const action of ['none', 'transferred', 'handoff', 'history', 'joined']) {
      expect(readInboundResult({ action })).toEqual({ action });
    }
    const pulled = { action: 'pulled', pages: 3, messages: 2500 };
    expect(readInboundResult(pulled)).toEqual(pulled);
    expect(readInboundResult({ action: 'pulled', pages: 3 })).toBeUndefined();
    expect(INBOUND_ACTIONS).toEqual([
      'replied',
      'requeued',
      'none',
      'transferred',
      'handoff',
      'history',
      'pulled',
      'joined',
    ]);
  });

  it('reads the former name handed_off as requeued, keeping the rest of the result', () => {
    const stored = { action: 'handed_off', replies: 2, sent: 0, outboundJobId: 'a-m1-r', reason: '45047' };
    expect(readInboundResult(stored)).toEqual({ ...stored, action: 'requeued' });
  });

  it('is undefined for a job without a result, or with one this version does not know', () => {
    for (const value of [undefined, null, 'replied', 3, {}, { action: 7 }, { action: 'constructor' }, { sent: 1 }]) {
      expect(readInboundResult(value)).toBeUndefined();
    }
  });
});
