// 接收普通消息: the message types users send, and a text spelled with MsgID (some pushes do).
import { type CatalogueEntry, head, message } from './catalogue-entry.js';

export const MESSAGE_ENTRIES: readonly CatalogueEntry[] = [
  { name: 'text', xml: message('text', '\n  <Content><![CDATA[this is a test]]></Content>') },
  {
    name: 'text (msgmenu choice)',
    xml: message('text', '\n  <Content><![CDATA[满意]]></Content>\n  <bizmsgmenuid>101</bizmsgmenuid>'),
  },
  {
    name: 'text (spelled MsgID)',
    xml: `${head('text')}
  <Content><![CDATA[hello]]></Content>
  <MsgID>{{id}}</MsgID>
</xml>`,
  },
  {
    name: 'image',
    xml: message(
      'image',
      '\n  <PicUrl><![CDATA[http://mmbiz.qpic.cn/x/0]]></PicUrl>\n  <MediaId><![CDATA[media_id]]></MediaId>',
    ),
  },
  {
    name: 'voice',
    xml: message(
      'voice',
      '\n  <MediaId><![CDATA[media_id]]></MediaId>\n  <Format><![CDATA[amr]]></Format>\n  <Recognition><![CDATA[腾讯微信团队]]></Recognition>',
    ),
  },
  {
    name: 'video',
    xml: message(
      'video',
      '\n  <MediaId><![CDATA[media_id]]></MediaId>\n  <ThumbMediaId><![CDATA[thumb_media_id]]></ThumbMediaId>',
    ),
  },
  {
    name: 'shortvideo',
    xml: message(
      'shortvideo',
      '\n  <MediaId><![CDATA[media_id]]></MediaId>\n  <ThumbMediaId><![CDATA[thumb_media_id]]></ThumbMediaId>',
    ),
  },
  {
    name: 'location',
    xml: message(
      'location',
      '\n  <Location_X>23.134521</Location_X>\n  <Location_Y>113.358803</Location_Y>\n  <Scale>20</Scale>\n  <Label><![CDATA[位置信息]]></Label>',
    ),
  },
  {
    name: 'link',
    xml: message(
      'link',
      '\n  <Title><![CDATA[公众平台官网链接]]></Title>\n  <Description><![CDATA[公众平台官网链接]]></Description>\n  <Url><![CDATA[url]]></Url>',
    ),
  },
  {
    name: 'miniprogrampage',
    xml: message(
      'miniprogrampage',
      '\n  <Title><![CDATA[Title]]></Title>\n  <AppId><![CDATA[wx0000000000000000]]></AppId>\n  <PagePath><![CDATA[pages/index/index]]></PagePath>\n  <ThumbUrl><![CDATA[http://mmbiz.qpic.cn/thumb]]></ThumbUrl>\n  <ThumbMediaId><![CDATA[thumb_media_id]]></ThumbMediaId>',
    ),
  },
];
