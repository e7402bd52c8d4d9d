import { isRecord } from '../record.js';

// The subscription events WeChat pushes (docs/wechat-protocol.md §14.2): the user's choice in a pop-up
// (`subscribe_msg_popup_event`), a change in their settings (`subscribe_msg_change_event`) and the result of a
// send (`subscribe_msg_sent_event`). XML nests the entries in `SubscribeMsg…Event.List`; JSON puts them in a
// top-level `List` (some pages show them under the wrapper's name itself). The parser makes every `List` an array.

/** What a subscription event does to a user's grants of one template. */
export interface GrantChange {
  templateId: string;
  change: 'add' | 'clear';
}

/** A pop-up choice that allows one message: `accept`, and `acceptWithAudio` (accepted with a voice reminder). */
const ACCEPTS = new Set(['accept', 'acceptWithAudio']);
/** Choices that take every grant of the template away: refused, or banned by WeChat. */
const REFUSALS = new Set(['reject', 'ban']);

/** A template id as WeChat makes them (letters, digits, `-`, `_`): anything else is not ours to count. */
export const TEMPLATE_ID = /^[A-Za-z0-9_-]{1,128}$/;

const WRAPPERS: Readonly<Record<string, string>> = {
  subscribe_msg_popup_event: 'SubscribeMsgPopupEvent',
  subscribe_msg_change_event: 'SubscribeMsgChangeEvent',
  subscribe_msg_sent_event: 'SubscribeMsgSentEvent',
};

/** The event's entries, each an object, wherever this format put them. */
function entries(message: Readonly<Record<string, unknown>>): Record<string, unknown>[] {
  const event = typeof message.Event === 'string' ? message.Event : '';
  const wrapper = WRAPPERS[event];
  if (!wrapper) return [];
  const nested = message[wrapper];
  const list = isRecord(nested) ? nested.List : (nested ?? message.List);
  const items = Array.isArray(list) ? list : [list];
  return items.filter(isRecord);
}

const text = (value: unknown) => (typeof value === 'string' ? value : '');

/**
 * The grant changes a push carries, in order: each `accept` in a pop-up adds one grant, a `reject` or `ban`
 * clears the template's grants, and so does a change to `reject` in the settings. Any other push: none.
 */
export function grantChanges(message: Readonly<Record<string, unknown>>): GrantChange[] {
  if (message.MsgType !== 'event') return [];
  const popup = message.Event === 'subscribe_msg_popup_event';
  if (!popup && message.Event !== 'subscribe_msg_change_event') return [];
  const changes: GrantChange[] = [];
  for (const entry of entries(message)) {
    const templateId = text(entry.TemplateId);
    const status = text(entry.SubscribeStatusString);
    if (!TEMPLATE_ID.test(templateId)) continue;
    if (popup && ACCEPTS.has(status)) changes.push({ templateId, change: 'add' });
    else if (REFUSALS.has(status)) changes.push({ templateId, change: 'clear' });
  }
  return changes;
}

/** A subscription event in a few words for the timeline: `<template> accept`, `<template> 0 success`. */
export function subscriptionSummary(message: Readonly<Record<string, unknown>>): string {
  return entries(message)
    .map((e) => [e.TemplateId, e.SubscribeStatusString, e.ErrorCode, e.ErrorStatus].map(text).filter(Boolean).join(' '))
    .join('; ');
}
