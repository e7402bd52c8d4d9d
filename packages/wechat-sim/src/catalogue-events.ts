// 接收事件推送, 自定义菜单事件, 多客服: what users do in the chat, on the account and in its menu, and what agents do.
import { type CatalogueEntry, event } from './catalogue-entry.js';

/** Entering a Mini Program chat; following, scanning, reporting a location on an Official Account. */
export const USER_EVENTS: readonly CatalogueEntry[] = [
  {
    name: 'event:user_enter_tempsession',
    xml: event('user_enter_tempsession', '\n  <SessionFrom><![CDATA[sessionFrom]]></SessionFrom>'),
    differsBy: { field: 'SessionFrom', from: 'sessionFrom', to: 'another-button' },
  },
  { name: 'event:subscribe', xml: event('subscribe') },
  {
    name: 'event:subscribe (QR scene)',
    xml: event(
      'subscribe',
      '\n  <EventKey><![CDATA[qrscene_123123]]></EventKey>\n  <Ticket><![CDATA[TICKET]]></Ticket>',
    ),
    differsBy: { field: 'Ticket', from: 'TICKET', to: 'ANOTHER_TICKET' },
  },
  { name: 'event:unsubscribe', xml: event('unsubscribe') },
  {
    name: 'event:SCAN',
    xml: event('SCAN', '\n  <EventKey><![CDATA[SCENE_VALUE]]></EventKey>\n  <Ticket><![CDATA[TICKET]]></Ticket>'),
    differsBy: { field: 'Ticket', from: 'TICKET', to: 'ANOTHER_TICKET' },
  },
  {
    name: 'event:LOCATION',
    xml: event(
      'LOCATION',
      '\n  <Latitude>23.137466</Latitude>\n  <Longitude>113.352425</Longitude>\n  <Precision>119.385040</Precision>',
    ),
    differsBy: { field: 'Latitude', from: '23.137466', to: '23.137999' },
  },
];

/** The custom menu: clicks, links, scans, photos and locations picked from it. */
export const MENU_EVENTS: readonly CatalogueEntry[] = [
  { name: 'event:CLICK', xml: event('CLICK', '\n  <EventKey><![CDATA[EVENTKEY]]></EventKey>') },
  {
    name: 'event:VIEW',
    xml: event('VIEW', '\n  <EventKey><![CDATA[www.qq.com]]></EventKey>\n  <MenuId>MENUID</MenuId>'),
    differsBy: { field: 'MenuId', from: 'MENUID', to: 'MENUID2' },
  },
  {
    name: 'event:view_miniprogram',
    xml: event('view_miniprogram', '\n  <EventKey><![CDATA[pages/index/index]]></EventKey>\n  <MenuId>MENUID</MenuId>'),
    differsBy: { field: 'MenuId', from: 'MENUID', to: 'MENUID2' },
  },
  {
    name: 'event:scancode_push',
    xml: event(
      'scancode_push',
      `
  <EventKey><![CDATA[6]]></EventKey>
  <ScanCodeInfo>
    <ScanType><![CDATA[qrcode]]></ScanType>
    <ScanResult><![CDATA[1]]></ScanResult>
  </ScanCodeInfo>`,
    ),
    differsBy: { field: 'ScanCodeInfo.ScanResult', from: '1', to: '2' },
  },
  {
    name: 'event:scancode_waitmsg',
    xml: event(
      'scancode_waitmsg',
      `
  <EventKey><![CDATA[6]]></EventKey>
  <ScanCodeInfo>
    <ScanType><![CDATA[qrcode]]></ScanType>
    <ScanResult><![CDATA[2]]></ScanResult>
  </ScanCodeInfo>`,
    ),
    differsBy: { field: 'ScanCodeInfo.ScanResult', from: '2', to: '3' },
  },
  ...(['pic_sysphoto', 'pic_photo_or_album', 'pic_weixin'] as const).map((name) => ({
    name: `event:${name}`,
    xml: event(
      name,
      `
  <EventKey><![CDATA[6]]></EventKey>
  <SendPicsInfo>
    <Count>1</Count>
    <PicList>
      <item>
        <PicMd5Sum><![CDATA[1b5f7c23b5bf75682a53e7b6d163e185]]></PicMd5Sum>
      </item>
    </PicList>
  </SendPicsInfo>`,
    ),
    differsBy: {
      field: 'SendPicsInfo.PicList.item.0.PicMd5Sum',
      from: '1b5f7c23b5bf75682a53e7b6d163e185',
      to: '5a75aaca956d97be686719218f275c6b',
    },
  })),
  {
    name: 'event:location_select',
    xml: event(
      'location_select',
      `
  <EventKey><![CDATA[6]]></EventKey>
  <SendLocationInfo>
    <Location_X><![CDATA[23]]></Location_X>
    <Location_Y><![CDATA[113]]></Location_Y>
    <Scale><![CDATA[15]]></Scale>
    <Label><![CDATA[ 广州市海珠区客村艺苑路 106号]]></Label>
    <Poiname><![CDATA[]]></Poiname>
  </SendLocationInfo>`,
    ),
    differsBy: { field: 'SendLocationInfo.Location_X', from: '23', to: '24' },
  },
];

/** Sessions taken, closed and passed between agents. */
export const KF_EVENTS: readonly CatalogueEntry[] = [
  {
    name: 'event:kf_create_session',
    xml: event('kf_create_session', '\n  <KfAccount><![CDATA[test1@test]]></KfAccount>'),
    differsBy: { field: 'KfAccount', from: 'test1@test', to: 'test2@test' },
  },
  {
    name: 'event:kf_close_session',
    xml: event(
      'kf_close_session',
      '\n  <KfAccount><![CDATA[test1@test]]></KfAccount>\n  <CloseType><![CDATA[KF]]></CloseType>',
    ),
    differsBy: { field: 'KfAccount', from: 'test1@test', to: 'test2@test' },
  },
  {
    name: 'event:kf_switch_session',
    xml: event(
      'kf_switch_session',
      '\n  <FromKfAccount><![CDATA[test1@test]]></FromKfAccount>\n  <ToKfAccount><![CDATA[test2@test]]></ToKfAccount>',
    ),
    differsBy: { field: 'ToKfAccount', from: 'test2@test', to: 'test3@test' },
  },
];
