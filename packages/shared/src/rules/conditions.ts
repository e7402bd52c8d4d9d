import { z } from 'zod';

/** The MsgType values WeChat pushes to a customer-service URL (Mini Programs and Official Accounts). */
export const MESSAGE_TYPES = [
  'text',
  'image',
  'voice',
  'video',
  'shortvideo',
  'location',
  'link',
  'miniprogrampage',
  'event',
] as const;

/** The Event values WeChat documents for these pushes; a rule naming another is refused (events are case-sensitive). */
export const KNOWN_EVENTS: ReadonlySet<string> = new Set([
  // Mini Program customer service
  'user_enter_tempsession',
  // Official Accounts: follows, scans, menus, location
  'subscribe',
  'unsubscribe',
  'SCAN',
  'LOCATION',
  'CLICK',
  'VIEW',
  'scancode_push',
  'scancode_waitmsg',
  'pic_sysphoto',
  'pic_photo_or_album',
  'pic_weixin',
  'location_select',
  'view_miniprogram',
  // customer-service sessions
  'kf_create_session',
  'kf_close_session',
  'kf_switch_session',
  // WeCom customer service (微信客服, wecom-kf accounts): the customer opened the chat (with a welcome code)
  'enter_session',
  // job results and subscription messages
  'TEMPLATESENDJOBFINISH',
  'MASSSENDJOBFINISH',
  'PUBLISHJOBFINISH',
  'subscribe_msg_popup_event',
  'subscribe_msg_change_event',
  'subscribe_msg_sent_event',
  // cards, verification, content checks
  'user_get_card',
  'user_del_card',
  'user_consume_card',
  'user_view_card',
  'user_enter_session_from_card',
  'card_pass_check',
  'card_not_pass_check',
  'qualification_verify_success',
  'qualification_verify_fail',
  'naming_verify_success',
  'naming_verify_fail',
  'annual_renew',
  'verify_expired',
  'wxa_media_check',
  'user_info_modified',
  'user_authorization_revoke',
]);

/** A value for a problem message: quoted, and cut after 40 characters. */
export const quoted = (s: string) => JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);

const eventName = z
  .string()
  .min(1)
  .superRefine((name, ctx) => {
    if (KNOWN_EVENTS.has(name)) return;
    const near = [...KNOWN_EVENTS].find((e) => e.toLowerCase() === name.toLowerCase());
    ctx.addIssue({
      code: 'custom',
      message: near
        ? `unknown event ${quoted(name)}: events are case-sensitive (${quoted(near)})`
        : `unknown event ${quoted(name)} (the known ones are listed in the README, "Reply rules")`,
    });
  });

/** A rule's `when`: the conditions a message must meet, each combination checked for sense. */
export const whenSchema = z
  .strictObject({
    msgType: z.enum(MESSAGE_TYPES).optional(),
    event: eventName.optional(),
    eventKey: z.string().optional(),
    contains: z.string().min(1).optional(),
    equals: z.string().optional(),
    regex: z
      .string()
      .refine((source) => {
        try {
          new RegExp(source, 'u');
          return true;
        } catch {
          return false;
        }
      }, 'is not a valid regular expression')
      .optional(),
  })
  .refine((w) => Object.keys(w).length > 0, 'needs at least one condition')
  // Conditions that can never hold together are a typo, not a rule.
  .refine(
    (w) =>
      w.msgType === undefined ||
      w.msgType === 'text' ||
      (w.contains === undefined && w.equals === undefined && w.regex === undefined),
    { message: 'contains, equals and regex match a text message: they need msgType text', path: ['msgType'] },
  )
  .refine((w) => w.msgType === undefined || w.msgType === 'event' || (w.event ?? w.eventKey) === undefined, {
    message: 'event and eventKey match events: they need msgType event (or no msgType)',
    path: ['msgType'],
  });
