/** A chat message as OpenAI's API takes it: the fields the fake model reads (the others are recorded as sent). */
export interface ChatMessage {
  role: string;
  content?: string | { type?: string; text?: string }[] | null;
}

/** What the fake model answers: text, or a call of the `transfer_to_human` tool. */
export type Answer = { text: string } | { tool: typeof HANDOFF_TOOL; arguments: string };

/** An answer as tokens (one streaming delta each), with OpenAI's finish reason and token usage. */
export interface Generation {
  /** The text's tokens, or the tool call's arguments' tokens. */
  pieces: string[];
  tool: typeof HANDOFF_TOOL | undefined;
  finish: 'stop' | 'length' | 'tool_calls';
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

export const HANDOFF_TOOL = 'transfer_to_human';
/** `#long N` is capped here: a test asking for more is a mistake, not a load test. */
export const MAX_LONG_BYTES = 1_000_000;

const CJK = '\\u2e80-\\u9fff\\uf900-\\ufaff\\uff00-\\uffef';
const TOKEN = new RegExp(`[${CJK}]|[^${CJK}]{1,4}`, 'gu');
const HUMAN = /#human|人工|真人|\bhuman\b|\bperson\b/i;
const LONG = /#long\s+(\d+)/i;

/**
 * The fake model's tokens, and its streaming chunks: one per CJK character, one per run of up to 4 other
 * characters. Not a real tokenizer, but deterministic and about as many tokens as a real one counts.
 */
export const tokenize = (text: string): string[] => text.match(TOKEN) ?? [];

/** A message's text: the string content, or its text parts joined. */
export function textOf(message: ChatMessage): string {
  const { content } = message;
  if (typeof content === 'string') return content;
  return Array.isArray(content) ? content.map((part) => part?.text ?? '').join('') : '';
}

/** Prompt tokens: 4 per message plus the tokens of its text. */
export const promptTokens = (messages: ChatMessage[]): number =>
  messages.reduce((n, m) => n + 4 + tokenize(textOf(m)).length, 0);

/**
 * The first line of every text answer, so that a test sees the context the model was sent:
 *
 *   [fake model] messages=5 system=1 user=3 assistant=1 tool=0 last="你好"
 *
 * counts of the request's messages by role (`system` counts `developer` too) and the last user message's text
 * as a JSON string (so the line stays one line).
 */
export function contextLine(messages: ChatMessage[]): string {
  const count = (...roles: string[]) => messages.filter((m) => roles.includes(m.role)).length;
  const last = messages.findLast((m) => m.role === 'user');
  return (
    `[fake model] messages=${messages.length} system=${count('system', 'developer')} user=${count('user')} ` +
    `assistant=${count('assistant')} tool=${count('tool')} last=${JSON.stringify(last ? textOf(last) : '')}`
  );
}

const sentence = (n: number) =>
  n % 2 === 0
    ? `第${n}句：这是模拟器的假模型写的长回答，用来测试按段落和句子切分消息。`
    : `Sentence ${n} of the fake model's long answer, written to test splitting at sentence boundaries.`;
/** Sentences per paragraph, in turn: the third paragraph (~2.7 kB) is longer than one WeChat message (2 048 B). */
const PARAGRAPH = [3, 8, 30, 5];

/**
 * Exactly `bytes` UTF-8 bytes (or the context line alone when that is already longer): the line, a blank line,
 * then paragraphs (separated by a blank line) of numbered sentences, Chinese (even numbers, ending in 。) and
 * English (odd, ending in `.`, followed by a space inside a paragraph); the last is cut to fit, in ASCII.
 */
export function longText(line: string, bytes: number): string {
  const parts = [line];
  let size = Buffer.byteLength(line);
  let n = 1;
  for (let p = 0; ; p++) {
    for (let s = 0; s < (PARAGRAPH[p % PARAGRAPH.length] ?? 1); s++, n++) {
      const sep = s === 0 ? '\n\n' : n % 2 === 0 ? ' ' : '';
      const piece = sep + sentence(n);
      const length = Buffer.byteLength(piece);
      if (size + length > bytes) {
        // ASCII cuts anywhere: the English form of the same sentence, then dots if the separator is all that fits.
        const ascii = (sep + sentence(n % 2 === 0 ? n + 1 : n)).padEnd(bytes, '.');
        if (bytes > size) parts.push(ascii.slice(0, bytes - size));
        return parts.join('');
      }
      parts.push(piece);
      size += length;
    }
  }
}

/**
 * The answer to a request. The last user message chooses: asking for a person (`#human`, 人工, 真人, "human",
 * "person") calls `transfer_to_human` with a `reason`, when the request offers that tool and `tool_choice` is
 * not "none"; `#long N` answers N bytes (see longText); anything else gets the context line and one short
 * paragraph.
 */
export function compose(messages: ChatMessage[], tools: string[], toolChoice: unknown): Answer {
  const line = contextLine(messages);
  const lastUser = messages.findLast((m) => m.role === 'user');
  const last = lastUser ? textOf(lastUser) : '';
  if (HUMAN.test(last) && tools.includes(HANDOFF_TOOL) && toolChoice !== 'none') {
    return { tool: HANDOFF_TOOL, arguments: JSON.stringify({ reason: `the user asked for a person: ${last}` }) };
  }
  const long = LONG.exec(last);
  if (long) return { text: longText(line, Math.min(Number(long[1]), MAX_LONG_BYTES)) };
  return { text: `${line}\n\n这是模拟器里的假模型的回答。This is the simulator's fake model answering.` };
}

/** The answer as tokens; text longer than `maxTokens` is cut there (finish reason `length`), as a real model does. */
export function generate(
  messages: ChatMessage[],
  tools: string[],
  toolChoice: unknown,
  maxTokens: number | undefined,
): Generation {
  const answer = compose(messages, tools, toolChoice);
  const tool = 'tool' in answer ? answer.tool : undefined;
  let pieces = tokenize('tool' in answer ? answer.arguments : answer.text);
  const cut = !tool && maxTokens !== undefined && pieces.length > maxTokens;
  if (cut) pieces = pieces.slice(0, maxTokens);
  const prompt = promptTokens(messages);
  const completion = pieces.length + (tool ? tokenize(tool).length : 0);
  return {
    pieces,
    tool,
    finish: tool ? 'tool_calls' : cut ? 'length' : 'stop',
    usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
  };
}
