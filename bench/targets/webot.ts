// (b) The popular Node peer: the `wechat` npm middleware (node-webot) on Express, answering '' (accepted by WeChat).
import express from 'express';
import wechat from 'wechat';

const [port, token, appid, encodingAESKey] = process.argv.slice(2);
const app = express();
app.use(
  '/wechat/:appId',
  wechat({ token, appid, encodingAESKey }, (_req: unknown, res: { reply(s: string): void }) => res.reply('')),
);
app.listen(Number(port), '127.0.0.1', () => console.log('listening'));
