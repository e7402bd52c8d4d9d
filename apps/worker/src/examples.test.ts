import { fileURLToPath } from 'node:url';
import { ReplyRules } from '@wx-kf/shared/rules';
import { type InboundMessage, validateReply } from '@wx-kf/shared/wechat';
import { SAMPLE_TYPES, sampleMessage } from '@wx-kf/wechat-sim';
import { describe, expect, it } from 'vitest';

const examples = fileURLToPath(new URL('../../../examples/rules.yaml', import.meta.url));

/** Every string in a reply, wherever it sits. */
const strings = (value: unknown): string[] =>
  typeof value === 'string'
    ? [value]
    : typeof value === 'object' && value !== null
      ? Object.values(value).flatMap(strings)
      : [];

describe('examples/rules.yaml', () => {
  for (const accountType of ['miniprogram', 'officialaccount'] as const) {
    const rules = ReplyRules.load(examples, accountType);
    it.each(SAMPLE_TYPES)(`${accountType}: a %s message gets a reply with every field filled, or none`, (type) => {
      const decision = rules.decide(sampleMessage(type, { content: 'order 7' }) as InboundMessage);
      if (decision.kind !== 'reply') return;
      expect(decision.missing).toBeUndefined();
      for (const item of decision.replies) {
        expect(() => validateReply(item, accountType)).not.toThrow();
        for (const s of strings(item)) expect(s).not.toMatch(/^\s*$|[：:（(,，]\s*$|\{\{/);
      }
    });
  }

  it('answers a message of every kind, and events only when a rule says so', () => {
    const rules = ReplyRules.load(examples, 'officialaccount');
    const replied = SAMPLE_TYPES.filter((type) => {
      const d = rules.decide(sampleMessage(type) as InboundMessage);
      return d.kind === 'reply' && d.replies.length > 0;
    });
    const messages = SAMPLE_TYPES.filter((t) => sampleMessage(t).MsgType !== 'event');
    expect(replied.sort()).toEqual([...messages, 'user_enter_tempsession'].sort());
  });
});
