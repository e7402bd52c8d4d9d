import type { AiAction } from './action.js';
import type { ChatMessage } from './context.js';
import { MESSAGE_MAX_BYTES } from './split.js';

/** The function the model may call to hand the user to a person, offered in every request. */
export const HANDOFF_TOOL_NAME = 'transfer_to_human';

/** The tool as OpenAI's chat-completions API takes it. */
export const HANDOFF_TOOL = {
  type: 'function' as const,
  function: {
    name: HANDOFF_TOOL_NAME,
    description:
      'Hand the user to a human customer-service agent: when they ask for a person, or when you cannot help them.',
    parameters: {
      type: 'object',
      properties: { reason: { type: 'string', description: 'Why the user needs a person, in a few words.' } },
      required: ['reason'],
    },
  },
};

/** The room an answer of `messages` messages has, told to the model (splitting at boundaries loses some of it). */
export function lengthBudget(messages: number): { bytes: number; chinese: number; words: number } {
  const bytes = Math.floor(messages * MESSAGE_MAX_BYTES * 0.9);
  return { bytes, chinese: Math.floor(bytes / 3), words: Math.floor(bytes / 6) };
}

/**
 * The system prompt: the rule's, then what the channel allows (the length the answer has, plain text) and when
 * to call the hand-over tool. The length is the sends left for this answer, so the model can fit in it.
 */
export function systemPrompt(action: Pick<AiAction, 'system'>, messages: number): string {
  const { bytes, chinese, words } = lengthBudget(messages);
  return [
    action.system,
    `Your answer is delivered as ${messages === 1 ? 'one WeChat text message' : `at most ${messages} WeChat text messages`} ` +
      `of ${MESSAGE_MAX_BYTES} bytes: keep it under ${bytes} bytes (about ${chinese} Chinese characters or ${words} ` +
      'English words); anything longer is cut off. Write plain text: no Markdown, tables or code blocks.',
    `If the user asks for a person, or you cannot help them, call the ${HANDOFF_TOOL_NAME} function instead of answering.`,
  ].join('\n\n');
}

/** The request's messages: the system prompt, the conversation so far, and the message being answered. */
export function requestMessages(
  action: Pick<AiAction, 'system'>,
  messages: number,
  history: ChatMessage[],
  current: string,
): ChatMessage[] {
  return [{ role: 'system', content: systemPrompt(action, messages) }, ...history, { role: 'user', content: current }];
}
