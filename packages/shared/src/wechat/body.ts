import { XMLParser } from 'fast-xml-parser';
import { parse as parseLosslessJson } from 'lossless-json';
import { isRecord } from '../record.js';
import { MessageFormatError } from './errors.js';

export type PushFormat = 'xml' | 'json';
/** How a push reached us: plaintext, compat (Encrypt beside the plaintext fields) or safe (Encrypt only). */
export type PushMode = 'plain' | 'compat' | 'safe';

/** A push's fields as WeChat names them; every scalar is a string (numbers keep their exact digits). */
export type FieldValue = string | FieldMap | FieldValue[];
export interface FieldMap {
  [field: string]: FieldValue;
}

const MAX_DEPTH = 16;

const xmlParser = new XMLParser({
  parseTagValue: false,
  ignoreAttributes: true,
  trimValues: false,
  ignoreDeclaration: true,
  maxNestedTags: MAX_DEPTH,
});

/** Detects the format from the body itself (Content-Type is not trustworthy): `<` is XML, `{` is JSON. */
export function detectFormat(body: string): PushFormat {
  for (let i = 0; i < body.length; i++) {
    const c = body.charCodeAt(i);
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0xfeff) continue;
    if (c === 0x3c) return 'xml';
    if (c === 0x7b) return 'json';
    break;
  }
  throw new MessageFormatError('body is neither XML nor a JSON object');
}

/** Keys that could change an object's prototype or shape downstream: refused wherever they occur. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Elements WeChat repeats inside lists (`SendPicsInfo.PicList.item`, `SubscribeMsg*Event.List`,
 * `CopyrightCheckResult.ResultList.item`, `PublishEventInfo.article_detail.item`, and the top-level `List` of
 * subscribe-message events pushed as JSON, an object when it holds one entry): always arrays, at any level, so a
 * list's shape does not depend on its length or on XML versus JSON.
 */
export const LIST_FIELDS: ReadonlySet<string> = new Set(['item', 'List']);

/**
 * The parser's output in one shape: strings for every scalar (numbers keep their digits), no whitespace-only
 * text between child elements (an indented body stores what a compact one does), list elements as arrays,
 * and no prototype keys. Depth is bounded.
 */
function normalize(value: unknown, depth: number): FieldValue {
  if (typeof value === 'string') return value;
  if (value === null || value === undefined) return '';
  if (isRecord(value)) return normalizeFields(value, depth);
  if (!Array.isArray(value)) return String(value);
  checkDepth(depth);
  return value.map((v) => normalize(v, depth + 1));
}

/** An object's fields, normalized (see normalize). */
function normalizeFields(value: Record<string, unknown>, depth: number): FieldMap {
  checkDepth(depth);
  const out: FieldMap = {};
  for (const key of Object.keys(value)) {
    if (FORBIDDEN_KEYS.has(key)) throw new MessageFormatError(`field name "${key}" is not accepted`);
    const v = value[key];
    if (key === '#text' && typeof v === 'string' && v.trim() === '') continue;
    const n = normalize(v, depth + 1);
    out[key] = LIST_FIELDS.has(key) && !Array.isArray(n) ? [n] : n;
  }
  return out;
}

function checkDepth(depth: number): void {
  if (depth >= MAX_DEPTH) throw new MessageFormatError(`body nested deeper than ${MAX_DEPTH} levels`);
}

/** A parser's error message (anything thrown that is not an Error, as text). */
const reasonOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

function parseXml(body: string, validate: boolean): FieldMap {
  // A DTD can define entities (billion laughs, external entities); WeChat never sends one.
  if (/<!DOCTYPE|<!ENTITY/i.test(body)) throw new MessageFormatError('XML with a DOCTYPE or ENTITY is not accepted');
  let doc: unknown;
  try {
    doc = xmlParser.parse(body, validate);
  } catch (err) {
    throw new MessageFormatError(`malformed XML: ${reasonOf(err)}`);
  }
  const root = isRecord(doc) && Object.keys(doc).length === 1 ? doc.xml : undefined;
  if (!isRecord(root)) throw new MessageFormatError('XML must have a single <xml> root element');
  const fields = normalizeFields(root, 0);
  delete fields['#text'];
  return fields;
}

// A number that JSON.parse could change: more than 15 digits, a fraction or an exponent.
const INEXACT_NUMBER = /[:,[]\s*-?(?:\d{16}|\d+[.eE])/;
// The MsgId key itself (an unescaped quote after { or , can only start a key), to quote its digits.
const BARE_MSG_ID = /([{,]\s*"MsgId"\s*:\s*)(\d+)/;

function parseJson(body: string): FieldMap {
  let doc: unknown;
  try {
    // Numbers stay as their source text: a MsgId such as 6054768590064713728 exceeds 2^53. JSON.parse is
    // exact for short integers, so only bodies with other numbers (or digits that look like them) pay for
    // the lossless parser.
    let text = body;
    if (INEXACT_NUMBER.test(text)) text = text.replace(BARE_MSG_ID, '$1"$2"');
    doc = INEXACT_NUMBER.test(text) ? parseLosslessJson(body, null, (digits: string) => digits) : JSON.parse(text);
  } catch (err) {
    throw new MessageFormatError(`malformed JSON: ${reasonOf(err)}`);
  }
  if (!isRecord(doc)) throw new MessageFormatError('JSON body must be an object');
  return normalizeFields(doc, 0);
}

export interface ParseOptions {
  /**
   * Check that XML is well-formed before reading it (default). Only skip it for authenticated input (a
   * decrypted message, or an envelope whose Encrypt is then checked by msg_signature): it costs as much again.
   */
  validate?: boolean;
}

/** Parses an XML or JSON push body (envelope or decrypted message) into its fields. */
export function parseFields(
  body: string,
  format: PushFormat = detectFormat(body),
  options: ParseOptions = {},
): FieldMap {
  return format === 'xml' ? parseXml(body, options.validate ?? true) : parseJson(body);
}

// WeChat sends these as bare numbers in JSON and without CDATA in XML.
const NUMERIC_FIELDS = new Set(['CreateTime', 'MsgId', 'MsgDataId', 'Idx', 'Location_X', 'Location_Y', 'Scale']);

function xmlValue(name: string, value: FieldValue): string {
  if (Array.isArray(value)) return value.map((v) => xmlValue(name, v)).join('');
  if (typeof value === 'object') {
    return `<${name}>${Object.entries(value)
      .map(([k, v]) => xmlValue(k, v))
      .join('')}</${name}>`;
  }
  const inner = NUMERIC_FIELDS.has(name) && /^-?\d+(\.\d+)?$/.test(value) ? value : cdata(value);
  return `<${name}>${inner}</${name}>`;
}

function jsonValue(name: string, value: FieldValue): string {
  if (Array.isArray(value)) return `[${value.map((v) => jsonValue(name, v)).join(',')}]`;
  if (typeof value === 'object') {
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}:${jsonValue(k, v)}`)
      .join(',')}}`;
  }
  return NUMERIC_FIELDS.has(name) && /^-?\d+(\.\d+)?$/.test(value) ? value : JSON.stringify(value);
}

/** Wraps a string in CDATA; "]]>" cannot appear inside one section, so it is split across two. */
export function cdata(value: string): string {
  return `<![CDATA[${value.replaceAll(']]>', ']]]]><![CDATA[>')}]]>`;
}

/** Serialises fields the way WeChat does (the inverse of parseFields): numeric ids bare, strings in CDATA or quotes. */
export function formatFields(fields: FieldMap, format: PushFormat): string {
  const entries = Object.entries(fields);
  if (format === 'json') return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${jsonValue(k, v)}`).join(',')}}`;
  return `<xml>${entries.map(([k, v]) => xmlValue(k, v)).join('')}</xml>`;
}
