// 模板消息, 群发, 发布能力, 订阅通知: the results of jobs the account started, and users' subscription choices.
import { type CatalogueEntry, event } from './catalogue-entry.js';

/** A template message, a mass send, a publication: how the job ended. */
export const JOB_EVENTS: readonly CatalogueEntry[] = [
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
];

/** Subscription notices: accepted or rejected in a popup, changed in settings, sent. */
export const SUBSCRIPTION_EVENTS: readonly CatalogueEntry[] = [
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
];
