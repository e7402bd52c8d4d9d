import { describe, expect, it } from 'vitest';
import { dataKind, dataProblem, dataProblemOf, templateKeys } from './data-kinds.js';
import { grantChanges, subscriptionSummary } from './events.js';

describe('subscribe-message data limits', () => {
  it('reads the kind from the key and each kind against its limit, in characters', () => {
    expect(dataKind('character_string19')).toBe('character_string');
    expect(dataProblem('thing1', '一二三四五六七八九十一二三四五六七八九十')).toBeUndefined();
    expect(dataProblem('thing1', 'x'.repeat(21))).toBe(
      'data.thing1: a thing value is at most 20 characters (21 given)',
    );
    expect(dataProblem('phrase3', '配送中')).toBeUndefined();
    expect(dataProblem('phrase3', '正在配送中了')).toMatch(/at most 5 Chinese characters/);
    expect(dataProblem('phrase3', 'ok')).toMatch(/nothing else/);
    expect(dataProblem('number2', '3.14')).toBeUndefined();
    expect(dataProblem('number2', '12a')).toMatch(/digits/);
    expect(dataProblem('letter1', 'abc1')).toMatch(/letters/);
    expect(dataProblem('symbol1', '!!!!!!')).toMatch(/at most 5 symbols/);
    expect(dataProblem('phone_number4', '+86-0766-66888866')).toBeUndefined();
    expect(dataProblem('car_number5', '粤A8Z888挂1')).toMatch(/at most 8/);
    expect(dataProblem('name6', '张三李四王五赵六孙七钱')).toMatch(/10 Chinese characters/);
    expect(dataProblem('name6', 'Alexandra Richardson')).toBeUndefined();
    expect(dataProblem('amount7', '¥99.00')).toBeUndefined(); // a format WeChat checks itself
    expect(dataProblem('thing1', '')).toBe('data.thing1: a value is required');
  });

  it('checks the keys against the template: none it lacks, none missing', () => {
    const keys = templateKeys('会议时间:{{date2.DATA}}\n会议地点:{{thing1.DATA}}\n');
    expect(keys).toEqual(['date2', 'thing1']);
    expect(templateKeys('{ {result.DATA} }\n金额:{ {withdrawMoney.DATA} }')).toEqual(['result', 'withdrawMoney']);
    expect(dataProblemOf({ date2: { value: '2026年1月1日' }, thing1: { value: 'x' } }, keys)).toBeUndefined();
    expect(dataProblemOf({ date2: { value: 'x' }, thing1: { value: 'x' }, thing9: { value: 'x' } }, keys)).toMatch(
      /^data\.thing9: the template has no such key/,
    );
    expect(dataProblemOf({ date2: { value: 'x' } }, keys)).toBe('data.thing1: the template needs this key');
    expect(dataProblemOf({ thing1: { value: 'y'.repeat(21) } })).toMatch(/thing1.*20 characters/);
  });
});

describe('subscription events', () => {
  const popup = (list: unknown) => ({
    MsgType: 'event',
    Event: 'subscribe_msg_popup_event',
    SubscribeMsgPopupEvent: { List: list },
  });

  it('accept and acceptWithAudio add, reject and ban clear; other pushes change nothing', () => {
    const list = [
      { TemplateId: 'A', SubscribeStatusString: 'accept' },
      { TemplateId: 'B', SubscribeStatusString: 'acceptWithAudio' },
      { TemplateId: 'C', SubscribeStatusString: 'reject' },
      { TemplateId: 'D', SubscribeStatusString: 'ban' },
      { TemplateId: 'E', SubscribeStatusString: 'filter' },
      { TemplateId: 'bad id', SubscribeStatusString: 'accept' },
    ];
    expect(grantChanges(popup(list))).toEqual([
      { templateId: 'A', change: 'add' },
      { templateId: 'B', change: 'add' },
      { templateId: 'C', change: 'clear' },
      { templateId: 'D', change: 'clear' },
    ]);
    // JSON's top-level List; a change event accepts nothing, a reject clears.
    const change = { MsgType: 'event', Event: 'subscribe_msg_change_event' };
    expect(grantChanges({ ...change, List: [{ TemplateId: 'A', SubscribeStatusString: 'accept' }] })).toEqual([]);
    expect(
      grantChanges({ ...change, SubscribeMsgChangeEvent: [{ TemplateId: 'A', SubscribeStatusString: 'reject' }] }),
    ).toEqual([{ templateId: 'A', change: 'clear' }]);
    expect(grantChanges({ MsgType: 'text', List: list })).toEqual([]);
  });

  it('sums an event up for the timeline', () => {
    const sent = {
      MsgType: 'event',
      Event: 'subscribe_msg_sent_event',
      SubscribeMsgSentEvent: { List: [{ TemplateId: 'A', MsgID: '1', ErrorCode: '0', ErrorStatus: 'success' }] },
    };
    expect(subscriptionSummary(sent)).toBe('A 0 success');
    expect(subscriptionSummary(popup([{ TemplateId: 'A', SubscribeStatusString: 'accept' }]))).toBe('A accept');
  });
});
