import { randomInt } from 'node:crypto';
import type { FieldMap } from '@wx-kf/shared/wechat';

/** The message kinds the push client can produce. */
export const SAMPLE_TYPES = [
  'text',
  'image',
  'miniprogrampage',
  'user_enter_tempsession',
  'voice',
  'video',
  'shortvideo',
  'location',
  'link',
  'subscribe',
  'unsubscribe',
  'SCAN',
  'CLICK',
  'VIEW',
  'LOCATION',
  'kf_create_session',
  'kf_close_session',
  'kf_switch_session',
] as const;
export type SampleType = (typeof SAMPLE_TYPES)[number];

/** A 19-digit MsgId, like real ones (beyond 2^53). */
export function randomMsgId(): string {
  return `${randomInt(1_000_000_000, 9_999_999_999)}${String(randomInt(0, 999_999_999)).padStart(9, '0')}`;
}

export interface SampleOptions {
  toUser?: string;
  fromUser?: string;
  createTime?: number;
  content?: string;
  msgId?: string;
  /** kf events: the agent (`KfAccount`; `FromKfAccount` of a switch). */
  kfAccount?: string;
  /** kf_switch_session: the agent the session moves to. */
  toKfAccount?: string;
}

/** A realistic push of this type, with the given user, text and ids. */
export function sampleMessage(type: SampleType, options: SampleOptions = {}): FieldMap {
  const base = {
    ToUserName: options.toUser ?? 'gh_wxkfsandbox0',
    FromUserName: options.fromUser ?? 'o_sim_user_0001',
    CreateTime: String(options.createTime ?? Math.floor(Date.now() / 1000)),
  };
  const msg = (MsgType: string, fields: FieldMap): FieldMap => ({
    ...base,
    MsgType,
    ...fields,
    MsgId: options.msgId ?? randomMsgId(),
  });
  const event = (Event: string, fields: FieldMap = {}): FieldMap => ({ ...base, MsgType: 'event', Event, ...fields });
  switch (type) {
    case 'text':
      return msg('text', { Content: options.content ?? 'hello' });
    case 'image':
      return msg('image', { PicUrl: 'https://mmbiz.qpic.cn/sim/0', MediaId: 'SIM_IN_MEDIA_1' });
    case 'miniprogrampage':
      return msg('miniprogrampage', {
        Title: 'A page',
        AppId: 'wx0000000000000000',
        PagePath: 'pages/index/index',
        ThumbUrl: 'https://mmbiz.qpic.cn/sim/thumb',
        ThumbMediaId: 'SIM_IN_THUMB_1',
      });
    case 'voice':
      return msg('voice', { MediaId: 'SIM_IN_VOICE_1', Format: 'amr', Recognition: options.content ?? '你好' });
    case 'video':
    case 'shortvideo':
      return msg(type, { MediaId: 'SIM_IN_VIDEO_1', ThumbMediaId: 'SIM_IN_THUMB_1' });
    case 'location':
      return msg('location', { Location_X: '23.134521', Location_Y: '113.358803', Scale: '20', Label: '广州' });
    case 'link':
      return msg('link', { Title: 'A link', Description: 'd', Url: 'https://example.com/' });
    case 'user_enter_tempsession':
      return event('user_enter_tempsession', { SessionFrom: 'sim' });
    case 'subscribe':
      return event('subscribe', { EventKey: 'qrscene_1', Ticket: 'SIM_TICKET' });
    case 'unsubscribe':
      return event('unsubscribe');
    case 'SCAN':
      return event('SCAN', { EventKey: '1', Ticket: 'SIM_TICKET' });
    case 'CLICK':
      return event('CLICK', { EventKey: 'MENU_HELP' });
    case 'VIEW':
      return event('VIEW', { EventKey: 'https://example.com/', MenuId: '1' });
    case 'LOCATION':
      return event('LOCATION', { Latitude: '23.1', Longitude: '113.3', Precision: '119.3' });
    case 'kf_create_session':
      return event(type, { KfAccount: options.kfAccount ?? 'agent1@sim' });
    case 'kf_close_session':
      return event(type, { KfAccount: options.kfAccount ?? 'agent1@sim', CloseType: 'KF' });
    case 'kf_switch_session':
      return event(type, {
        FromKfAccount: options.kfAccount ?? 'agent1@sim',
        ToKfAccount: options.toKfAccount ?? 'agent2@sim',
      });
  }
}
