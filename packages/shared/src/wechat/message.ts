import {
  detectFormat,
  type FieldMap,
  type FieldValue,
  type ParseOptions,
  type PushFormat,
  parseFields,
} from './body.js';
import { MessageFormatError } from './errors.js';
import { OPENID_PATTERN } from './openid.js';

export { dedupKey } from './dedup.js';
export { OPENID_PATTERN };

interface Common {
  ToUserName: string;
  FromUserName: string;
  /** Unix seconds, as sent. */
  CreateTime: string;
  /** 64-bit id as an exact decimal string; absent on events. */
  MsgId?: string;
  [field: string]: FieldValue | undefined;
}

export interface TextMessage extends Common {
  MsgType: 'text';
  Content: string;
  /** Set when the user tapped a msgmenu option. */
  bizmsgmenuid?: string;
}
export interface ImageMessage extends Common {
  MsgType: 'image';
  MediaId: string;
  PicUrl?: string;
}
export interface VoiceMessage extends Common {
  MsgType: 'voice';
  MediaId: string;
  Format?: string;
  Recognition?: string;
}
export interface VideoMessage extends Common {
  MsgType: 'video' | 'shortvideo';
  MediaId: string;
  ThumbMediaId?: string;
}
export interface LocationMessage extends Common {
  MsgType: 'location';
  Location_X: string;
  Location_Y: string;
  Scale?: string;
  Label?: string;
}
export interface LinkMessage extends Common {
  MsgType: 'link';
  Url: string;
  Title?: string;
  Description?: string;
}
export interface MiniProgramPageMessage extends Common {
  MsgType: 'miniprogrampage';
  PagePath: string;
  Title?: string;
  AppId?: string;
  ThumbUrl?: string;
  ThumbMediaId?: string;
}
/** Events: user_enter_tempsession (MP), subscribe, unsubscribe, SCAN, CLICK, VIEW, LOCATION, kf_*_session (OA), … */
export interface EventMessage extends Common {
  MsgType: 'event';
  Event: string;
  EventKey?: string;
  SessionFrom?: string;
}
/** A message type this version does not know; passed through untouched. */
export interface OtherMessage extends Common {
  MsgType: string;
}

export type InboundMessage =
  | TextMessage
  | ImageMessage
  | VoiceMessage
  | VideoMessage
  | LocationMessage
  | LinkMessage
  | MiniProgramPageMessage
  | EventMessage
  | OtherMessage;

const COMMON_FIELDS = ['ToUserName', 'FromUserName', 'CreateTime', 'MsgType'] as const;
const REQUIRED_BY_TYPE: Record<string, readonly string[]> = {
  text: ['Content'],
  image: ['MediaId'],
  voice: ['MediaId'],
  video: ['MediaId'],
  shortvideo: ['MediaId'],
  location: ['Location_X', 'Location_Y'],
  link: ['Url'],
  miniprogrampage: ['PagePath'],
  event: ['Event'],
};

/**
 * Top-level fields the protocol defines as a single value (messages and events of Mini Programs and Official
 * Accounts): a repeated element or an object in their place is refused, so readers can rely on a string.
 */
const SCALAR_FIELDS = new Set([
  ...COMMON_FIELDS,
  'MsgId',
  'MsgID',
  'MsgDataId',
  'Idx',
  'Content',
  'bizmsgmenuid',
  'PicUrl',
  'MediaId',
  'Format',
  'Recognition',
  'ThumbMediaId',
  'Location_X',
  'Location_Y',
  'Scale',
  'Label',
  'Title',
  'Description',
  'Url',
  'PagePath',
  'AppId',
  'ThumbUrl',
  'Event',
  'EventKey',
  'SessionFrom',
  'Ticket',
  'Latitude',
  'Longitude',
  'Precision',
  'MenuId',
  'KfAccount',
  'FromKfAccount',
  'ToKfAccount',
  'CloseType',
  'Status',
  'TotalCount',
  'FilterCount',
  'SentCount',
  'ErrorCount',
]);

/** Checks a push's fields and types them as a message; unknown MsgTypes pass as OtherMessage. */
export function toMessage(fields: FieldMap): InboundMessage {
  checkMessage(fields);
  return fields;
}

/** Throws MessageFormatError unless the fields are a message: single values, the common fields, its type's own. */
function checkMessage(fields: FieldMap): asserts fields is FieldMap & InboundMessage {
  for (const name of Object.keys(fields)) {
    if (SCALAR_FIELDS.has(name) && typeof fields[name] !== 'string') {
      throw new MessageFormatError(`message field ${name} must be a single value`);
    }
  }
  for (const name of COMMON_FIELDS) {
    if (typeof fields[name] !== 'string' || fields[name] === '') {
      throw new MessageFormatError(`message field ${name} is missing or not a string`);
    }
  }
  const { CreateTime, MsgType } = fields;
  if (typeof CreateTime !== 'string' || !/^\d{1,12}$/.test(CreateTime)) {
    throw new MessageFormatError('CreateTime is not a unix time');
  }
  for (const name of ['MsgId', 'MsgID'] as const) {
    const id = fields[name];
    if (id !== undefined && (typeof id !== 'string' || !/^\d{1,20}$/.test(id))) {
      throw new MessageFormatError(`${name} is not a decimal id`);
    }
  }
  const required = typeof MsgType === 'string' && Object.hasOwn(REQUIRED_BY_TYPE, MsgType) && REQUIRED_BY_TYPE[MsgType];
  for (const name of required || []) {
    if (typeof fields[name] !== 'string') {
      throw new MessageFormatError(`${MsgType} message field ${name} is missing or not a string`);
    }
  }
}

/** Parses a plaintext (or decrypted) message body in XML or JSON. */
export function parseMessage(
  body: string,
  format: PushFormat = detectFormat(body),
  options?: ParseOptions,
): InboundMessage {
  return toMessage(parseFields(body, format, options));
}
