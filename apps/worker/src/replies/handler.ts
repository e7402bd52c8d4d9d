import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { WeChatClient } from '@wx-kf/shared/api';
import { type AccountConfig, ConfigError } from '@wx-kf/shared/config';
import type { WindowView } from '@wx-kf/shared/conversation';
import type { Logger } from '@wx-kf/shared/log';
import type { InboundMessage, messageBuilders, ReplyItem } from '@wx-kf/shared/wechat';

/** What a handler module gets besides the message. */
export interface HandlerContext {
  account: { appId: string; type: AccountConfig['type'] };
  log: Logger;
  /** Builders for reply items: `ctx.reply.text('hi')`. */
  reply: typeof messageBuilders;
  /** Queue more messages for any user of this account (sent in order, with retries); media by media_id. */
  send(touser: string, replies: ReplyItem[]): Promise<string>;
  /** Show or hide "typing…" for the user (best effort). */
  typing(touser: string, on?: boolean): Promise<void>;
  /**
   * The user's send window as the ledger has it now (`open`, `until`, sends `left`, the `trigger`, and `refusal`
   * when a send would be refused), e.g. to keep the last send for a human. Replies not yet sent are not counted.
   */
  window(touser: string): Promise<WindowView & { refusal?: string }>;
  /** Download an incoming message's media (image MediaId, …). */
  getMedia(mediaId: string): Promise<Buffer>;
  client: WeChatClient;
  /**
   * Hand a user to a human agent (their later messages are transferred, the bot sends them nothing) or back;
   * present when the account uses handoff. Replies returned for this message are still sent.
   */
  handoff?:
    | {
        open(touser: string, agent?: string): Promise<void>;
        close(touser: string): Promise<void>;
        isOpen(touser: string): Promise<boolean>;
      }
    | undefined;
}

/** `export default async function (message, ctx)`: returns the replies for the message (or nothing). */
export type MessageHandler = (message: InboundMessage, ctx: HandlerContext) => unknown | Promise<unknown>;

/**
 * Loads the module named by WECHAT_HANDLER and checks that its default export is a function. A missing file, a
 * module that fails to load (a syntax error, a throw at its top level, a missing import) or one without that
 * export is a ConfigError: one line and exit 1 at start, like every other bad value.
 */
export async function loadHandler(path: string): Promise<MessageHandler> {
  const file = resolve(path);
  if (!existsSync(file)) throw new ConfigError([`WECHAT_HANDLER: ${path}: no such file (${file})`]);
  let mod: { default?: unknown };
  try {
    mod = await import(pathToFileURL(file).href);
  } catch (error) {
    // Whatever the module threw: an Error, or any value.
    const e: { name?: unknown; message?: unknown } | undefined =
      typeof error === 'object' && error !== null ? error : undefined;
    const what = `${e?.name ?? 'Error'}: ${String(e?.message ?? error).split('\n')[0]}`;
    throw new ConfigError([`WECHAT_HANDLER: ${path}: the module does not load (${what})`]);
  }
  if (!isHandler(mod.default)) {
    throw new ConfigError([
      `WECHAT_HANDLER: ${path}: the module has no default export function (message, ctx) => replies`,
    ]);
  }
  return mod.default;
}

/** The module's default export, when it is a function: called as (message, ctx). */
const isHandler = (value: unknown): value is MessageHandler => typeof value === 'function';
