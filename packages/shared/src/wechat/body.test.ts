import { describe, expect, it } from 'vitest';
import { parseFields } from './body.js';
import { dedupKey, parseMessage } from './message.js';

const head = {
  ToUserName: 'gh_123456789abc',
  FromUserName: 'otFpruAK8D-E6EfStSYonYSBZ8_4',
  CreateTime: '1610969440',
  MsgType: 'event',
};
const accept = {
  TemplateId: 'VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc',
  SubscribeStatusString: 'accept',
  PopupScene: '2',
};
const reject = {
  TemplateId: '9nLIlbOQZC5Y89AZteFEux3WCXRRRG5Wfzkpssu4bLI',
  SubscribeStatusString: 'reject',
  PopupScene: '2',
};

// As a Mini Program pushes them in JSON: `List` at the top level, an object when the user answered one template.
const jsonPopup = (list: string) =>
  `{"ToUserName":"gh_123456789abc","FromUserName":"otFpruAK8D-E6EfStSYonYSBZ8_4","CreateTime":1610969440,` +
  `"MsgType":"event","Event":"subscribe_msg_popup_event","List":${list}}`;
const ACCEPT_JSON =
  '{"TemplateId":"VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc","SubscribeStatusString":"accept","PopupScene":"2"}';
const REJECT_JSON =
  '{"TemplateId":"9nLIlbOQZC5Y89AZteFEux3WCXRRRG5Wfzkpssu4bLI","SubscribeStatusString":"reject","PopupScene":"2"}';

// As an Official Account pushes them in XML: the `List` elements inside SubscribeMsgPopupEvent.
const ACCEPT_XML =
  '<List><TemplateId><![CDATA[VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc]]></TemplateId>' +
  '<SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString><PopupScene>2</PopupScene></List>';
const REJECT_XML =
  '<List><TemplateId><![CDATA[9nLIlbOQZC5Y89AZteFEux3WCXRRRG5Wfzkpssu4bLI]]></TemplateId>' +
  '<SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString><PopupScene>2</PopupScene></List>';
const xmlPopup = (inner: string) => `<xml>
  <ToUserName><![CDATA[gh_123456789abc]]></ToUserName>
  <FromUserName><![CDATA[otFpruAK8D-E6EfStSYonYSBZ8_4]]></FromUserName>
  <CreateTime>1610969440</CreateTime>
  <MsgType><![CDATA[event]]></MsgType>
  <Event><![CDATA[subscribe_msg_popup_event]]></Event>
  ${inner}
</xml>`;

describe('stored shape of lists', () => {
  it('JSON: a top-level List holding one object is stored as an array of one', () => {
    const message = parseMessage(jsonPopup(ACCEPT_JSON));
    expect(message).toEqual({ ...head, Event: 'subscribe_msg_popup_event', List: [accept] });
  });

  it('JSON: a top-level List that is an array stays one, with one entry or two', () => {
    expect(parseMessage(jsonPopup(`[${ACCEPT_JSON}]`)).List).toEqual([accept]);
    expect(parseMessage(jsonPopup(`[${ACCEPT_JSON},${REJECT_JSON}]`)).List).toEqual([accept, reject]);
  });

  it('JSON: the one-entry object and the one-entry array are the same push (same fields, same key)', () => {
    const single = parseMessage(jsonPopup(ACCEPT_JSON));
    const array = parseMessage(jsonPopup(`[${ACCEPT_JSON}]`));
    expect(single).toEqual(array);
    expect(dedupKey(single)).toBe(dedupKey(array));
  });

  it('XML: one and two <List> items inside SubscribeMsgPopupEvent are arrays', () => {
    const one = parseMessage(xmlPopup(`<SubscribeMsgPopupEvent>${ACCEPT_XML}</SubscribeMsgPopupEvent>`));
    expect(one.SubscribeMsgPopupEvent).toEqual({ List: [accept] });
    const two = parseMessage(xmlPopup(`<SubscribeMsgPopupEvent>${ACCEPT_XML}${REJECT_XML}</SubscribeMsgPopupEvent>`));
    expect(two.SubscribeMsgPopupEvent).toEqual({ List: [accept, reject] });
  });

  it('XML and JSON alike: a top-level <List> is an array with one item or two', () => {
    expect(parseMessage(xmlPopup(ACCEPT_XML)).List).toEqual([accept]);
    expect(parseMessage(xmlPopup(ACCEPT_XML))).toEqual(parseMessage(jsonPopup(ACCEPT_JSON)));
    expect(parseMessage(xmlPopup(ACCEPT_XML + REJECT_XML)).List).toEqual([accept, reject]);
  });

  it('a top-level item is an array too; other top-level fields keep their shape', () => {
    const fields = parseFields('{"item":{"a":"1"},"Other":{"b":"2"}}');
    expect(fields).toEqual({ item: [{ a: '1' }], Other: { b: '2' } });
  });
});
