// What the model sees of a user's conversation: their texts (and voice recognition), and what was sent to them
// (bot and send API alike), kept per (account, user) in a capped, expiring list beside the timeline. The entries
// are written by the conversation scripts (turn: the user's message when its turn comes; settle: a message
// WeChat accepted), so they are in the order the user saw them.

/** A chat message as an OpenAI-compatible endpoint takes it. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** How much of the conversation is kept per user: entries (0 = nothing kept) and their age. */
export interface ContextOptions {
  entries: number;
  maxAgeMs: number;
}

/** One entry is clipped to this many characters: a model needs the gist of a long message, not all of it. */
export const CONTEXT_ENTRY_MAX_CHARS = 2000;

/** An entry as stored (JSON): when, role (`u` the user, `a` sent to them), content, inbound job id. */
interface StoredEntry {
  t?: number;
  r?: string;
  c?: string;
  j?: string;
}

const clip = (text: string) =>
  text.length > CONTEXT_ENTRY_MAX_CHARS ? `${text.slice(0, CONTEXT_ENTRY_MAX_CHARS)}…` : text;

/**
 * What a user's message says, for the model: the text, the voice message's recognition (when WeChat gives one),
 * or a short description of anything else. Undefined for events (they are not something the user said).
 */
export function userContent(message: Record<string, unknown>): string | undefined {
  const type = message.MsgType;
  if (type === 'event' || typeof type !== 'string') return undefined;
  if (type === 'text' && typeof message.Content === 'string') return message.Content;
  if (type === 'voice' && typeof message.Recognition === 'string' && message.Recognition) return message.Recognition;
  const title = typeof message.Title === 'string' && message.Title ? `: ${message.Title}` : '';
  return `[the user sent a ${type} message${title}]`;
}

/** What a sent message says, for the model: a text's content, else its kind and title. */
export function sentContent(item: { msgtype?: unknown; [field: string]: unknown }): string {
  const kind = typeof item.msgtype === 'string' ? item.msgtype : 'message';
  const body = item[kind];
  const fields = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  if (kind === 'text' && typeof fields.content === 'string') return fields.content;
  const title = typeof fields.title === 'string' ? `: ${fields.title}` : '';
  return `[sent a ${kind} message${title}]`;
}

/** The stored entry of a user's message and the needle that finds it again (its job id); undefined for events. */
export function userEntry(message: Record<string, unknown>, jobId: string, at: number) {
  const content = userContent(message);
  if (content === undefined) return undefined;
  return {
    entry: JSON.stringify({ t: at, r: 'u', c: clip(content), j: jobId } satisfies StoredEntry),
    needle: `"j":${JSON.stringify(jobId)}}`,
  };
}

/** The stored entry of a message WeChat accepted for the user. */
export function sentEntry(item: { msgtype?: unknown; [field: string]: unknown }, jobId: string, at: number): string {
  return JSON.stringify({ t: at, r: 'a', c: clip(sentContent(item)), j: jobId } satisfies StoredEntry);
}

export interface HistoryOptions {
  /** Entries (user messages and messages sent) to include at most. */
  entries: number;
  /** Characters of content to include at most: the oldest entries go first. */
  chars: number;
  /** Entries older than this (ms) are left out. */
  oldest: number;
  /** The message being answered: its own entry is left out (it is the request's last user message). */
  jobId?: string | undefined;
}

/**
 * The model's view of the stored entries (oldest first): the newest that fit the entry and character bounds,
 * consecutive entries of one role joined into one message, starting with a user message.
 */
export function readHistory(raw: readonly string[], options: HistoryOptions): ChatMessage[] {
  const picked: { role: 'user' | 'assistant'; content: string }[] = [];
  let chars = 0;
  for (let i = raw.length - 1; i >= 0 && picked.length < options.entries; i--) {
    let e: StoredEntry;
    try {
      e = JSON.parse(raw[i] as string);
    } catch {
      continue; // not ours
    }
    if (typeof e.t !== 'number' || e.t < options.oldest || typeof e.c !== 'string') continue;
    if (e.r === 'u' && options.jobId !== undefined && e.j === options.jobId) continue;
    if (chars + e.c.length > options.chars) break;
    chars += e.c.length;
    picked.unshift({ role: e.r === 'u' ? 'user' : 'assistant', content: e.c });
  }
  while (picked[0]?.role === 'assistant') picked.shift();
  const merged: ChatMessage[] = [];
  for (const m of picked) {
    const last = merged.at(-1);
    if (last?.role === m.role) last.content += `\n\n${m.content}`;
    else merged.push({ ...m });
  }
  return merged;
}
