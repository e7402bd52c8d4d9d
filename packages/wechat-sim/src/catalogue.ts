/**
 * Every message and event type that WeChat documents for Mini Programs, Mini Games and Official Accounts,
 * written from the documentation pages (接收普通消息, 接收事件推送, 自定义菜单事件, 模板消息, 群发, 发布能力,
 * 订阅通知, 多客服, 小程序客服消息) in the indented XML the pages show, with values of the documented kind.
 * Placeholders: `{{from}}` (the user's OpenID), `{{time}}` (CreateTime) and `{{id}}` (a MsgId / MsgID).
 */
export interface CatalogueEntry {
  /** The type, as `MsgType` or `event:Event`. */
  name: string;
  xml: string;
  /**
   * For events without an id of their own: the field (a path in the stored message) and another value for it.
   * Two such events from one user in the same second, differing only there, are two pushes.
   */
  differsBy?: { field: string; from: string; to: string };
}

const head = (type: string) => `<xml>
  <ToUserName><![CDATA[gh_catalogue]]></ToUserName>
  <FromUserName><![CDATA[{{from}}]]></FromUserName>
  <CreateTime>{{time}}</CreateTime>
  <MsgType><![CDATA[${type}]]></MsgType>`;
const event = (name: string, body = '') => `${head('event')}
  <Event><![CDATA[${name}]]></Event>${body}
</xml>`;
const message = (type: string, body: string) => `${head(type)}${body}
  <MsgId>{{id}}</MsgId>
</xml>`;

export const PUSH_CATALOGUE: readonly CatalogueEntry[] = [
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
  {
    name: 'event:TEMPLATESENDJOBFINISH',
    xml: event('TEMPLATESENDJOBFINISH', '\n  <MsgID>{{id}}</MsgID>\n  <Status><![CDATA[success]]></Status>'),
  },
  {
    name: 'event:MASSSENDJOBFINISH',
    xml: event(
      'MASSSENDJOBFINISH',
      `
  <MsgID>{{id}}</MsgID>
  <Status><![CDATA[send success]]></Status>
  <TotalCount>100</TotalCount>
  <FilterCount>80</FilterCount>
  <SentCount>75</SentCount>
  <ErrorCount>5</ErrorCount>
  <CopyrightCheckResult>
    <Count>2</Count>
    <ResultList>
      <item>
        <ArticleIdx>1</ArticleIdx>
        <UserDeclareState>0</UserDeclareState>
        <AuditState>2</AuditState>
        <OriginalArticleUrl><![CDATA[Url_1]]></OriginalArticleUrl>
        <OriginalArticleType>1</OriginalArticleType>
        <CanReprint>1</CanReprint>
        <NeedReplaceContent>1</NeedReplaceContent>
        <NeedShowReprintSource>1</NeedShowReprintSource>
      </item>
      <item>
        <ArticleIdx>2</ArticleIdx>
        <UserDeclareState>0</UserDeclareState>
        <AuditState>2</AuditState>
        <OriginalArticleUrl><![CDATA[Url_2]]></OriginalArticleUrl>
        <OriginalArticleType>1</OriginalArticleType>
        <CanReprint>1</CanReprint>
        <NeedReplaceContent>1</NeedReplaceContent>
        <NeedShowReprintSource>1</NeedShowReprintSource>
      </item>
    </ResultList>
    <CheckState>2</CheckState>
  </CopyrightCheckResult>`,
    ),
  },
  {
    name: 'event:PUBLISHJOBFINISH',
    xml: event(
      'PUBLISHJOBFINISH',
      `
  <PublishEventInfo>
    <publish_id>{{id}}</publish_id>
    <publish_status>0</publish_status>
    <article_id><![CDATA[b5O2OUs25HBxRceL7hfReg-U9QGeq9zQjiDvy]]></article_id>
    <article_detail>
      <count>1</count>
      <item>
        <idx>1</idx>
        <article_url><![CDATA[ARTICLE_URL]]></article_url>
      </item>
    </article_detail>
  </PublishEventInfo>`,
    ),
  },
  {
    name: 'event:subscribe_msg_popup_event',
    xml: event(
      'subscribe_msg_popup_event',
      `
  <SubscribeMsgPopupEvent>
    <List>
      <TemplateId><![CDATA[VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc]]></TemplateId>
      <SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString>
      <PopupScene>2</PopupScene>
    </List>
    <List>
      <TemplateId><![CDATA[9nLIlbOQZC5Y89AZteFEux3WCXRRRG5Wfzkpssu4bLI]]></TemplateId>
      <SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString>
      <PopupScene>2</PopupScene>
    </List>
  </SubscribeMsgPopupEvent>`,
    ),
    differsBy: { field: 'SubscribeMsgPopupEvent.List.1.SubscribeStatusString', from: 'reject', to: 'accept' },
  },
  {
    name: 'event:subscribe_msg_change_event',
    xml: event(
      'subscribe_msg_change_event',
      `
  <SubscribeMsgChangeEvent>
    <List>
      <TemplateId><![CDATA[VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc]]></TemplateId>
      <SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString>
    </List>
  </SubscribeMsgChangeEvent>`,
    ),
    differsBy: { field: 'SubscribeMsgChangeEvent.List.0.SubscribeStatusString', from: 'reject', to: 'accept' },
  },
  {
    name: 'event:subscribe_msg_sent_event',
    xml: event(
      'subscribe_msg_sent_event',
      `
  <SubscribeMsgSentEvent>
    <List>
      <TemplateId><![CDATA[VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc]]></TemplateId>
      <MsgID>1700827132819554304</MsgID>
      <ErrorCode>0</ErrorCode>
      <ErrorStatus><![CDATA[success]]></ErrorStatus>
    </List>
  </SubscribeMsgSentEvent>`,
    ),
    differsBy: { field: 'SubscribeMsgSentEvent.List.0.MsgID', from: '1700827132819554304', to: '1700827132819554305' },
  },
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

/** The entry's XML for one user, time and id. */
export function catalogueXml(entry: CatalogueEntry, values: { from: string; time: number; id: string }): string {
  return entry.xml
    .replaceAll('{{from}}', values.from)
    .replaceAll('{{time}}', String(values.time))
    .replaceAll('{{id}}', values.id);
}
