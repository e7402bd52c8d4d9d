import type { ServerResponse } from 'node:http';
import type { ChatMessage } from './model-answer.js';

export interface ModelOptions {
  /** The name `/v1/models` lists (any model a request names is accepted and echoed back). */
  name?: string;
  /** When set, calls need `Authorization: Bearer <key>` (else 401, in OpenAI's error shape). */
  key?: string;
  /** Time to the first token, in ms (a plain answer takes it too). */
  latencyMs?: number;
  /** Generation speed; 0 = every token at once. A plain answer waits as long as the stream would take. */
  tokensPerSecond?: number;
}

export type ModelSettings = Required<Omit<ModelOptions, 'key'>> & { key: string | undefined };

/** One request to `/v1/chat/completions`, as tests read it. */
export interface ModelCall {
  at: number;
  model: string;
  stream: boolean;
  messages: ChatMessage[];
  /** Names of the functions offered in `tools`. */
  tools: string[];
  maxTokens: number | undefined;
  /** How it ended: an answer, a tool call, an answer cut at max_tokens, an HTTP error status, or a fault. */
  outcome: 'pending' | 'answer' | 'tool_call' | 'length' | number | 'hang' | 'drop' | 'aborted';
}

export const MODEL_PATH = '/v1/chat/completions';
const DEFAULTS: ModelSettings = { name: 'wx-kf-fake', key: undefined, latencyMs: 0, tokensPerSecond: 0 };
/** The defaults with the options given (an option given as undefined keeps its default). */
const settingsOf = (options: ModelOptions): ModelSettings => ({
  ...DEFAULTS,
  ...Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)),
});

/** The fake model's settings (changeable at run time) and the record of its calls. */
export class ModelState {
  settings: ModelSettings;
  readonly calls: ModelCall[] = [];
  /** Responses not finished yet: their number is the calls in flight. */
  readonly open = new Set<ServerResponse>();
  maxInFlight = 0;

  constructor(private readonly options: ModelOptions = {}) {
    this.settings = settingsOf(options);
  }

  get inFlight(): number {
    return this.open.size;
  }

  /** Forgets the calls and restores the settings the simulator was started with. */
  reset(): void {
    this.calls.length = 0;
    this.maxInFlight = this.open.size;
    this.settings = settingsOf(this.options);
  }
}
