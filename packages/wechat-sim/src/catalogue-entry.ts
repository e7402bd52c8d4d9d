/** One push of the catalogue: its type, its XML with placeholders, and how a second such push would differ. */
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

/** The fields every push starts with; `{{from}}` and `{{time}}` are filled in by catalogueXml. */
export const head = (type: string) => `<xml>
  <ToUserName><![CDATA[gh_catalogue]]></ToUserName>
  <FromUserName><![CDATA[{{from}}]]></FromUserName>
  <CreateTime>{{time}}</CreateTime>
  <MsgType><![CDATA[${type}]]></MsgType>`;
/** An event with its own fields after `Event`. */
export const event = (name: string, body = '') => `${head('event')}
  <Event><![CDATA[${name}]]></Event>${body}
</xml>`;
/** A message with its own fields, then its MsgId. */
export const message = (type: string, body: string) => `${head(type)}${body}
  <MsgId>{{id}}</MsgId>
</xml>`;
