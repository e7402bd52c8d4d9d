// The synchronous style of the common blog examples: inside the push request, get an access_token (cached in
// this process) and call custom/send, then answer. Every push waits on the WeChat API.
import express from 'express';
import wechat from 'wechat';

const [port, token, appid, encodingAESKey, apiBase, secret] = process.argv.slice(2) as string[];
let accessToken: string | undefined;

async function getToken(): Promise<string> {
  if (accessToken) return accessToken;
  const res = await fetch(`${apiBase}/cgi-bin/token?grant_type=client_credential&appid=${appid}&secret=${secret}`);
  accessToken = ((await res.json()) as { access_token: string }).access_token;
  return accessToken;
}

const app = express();
app.use(
  '/wechat/:appId',
  wechat({ token, appid, encodingAESKey }, (req: unknown, res: { reply(s: string): void }) => {
    const message = (req as { weixin: { FromUserName: string; Content?: string } }).weixin;
    getToken()
      .then((t) =>
        fetch(`${apiBase}/cgi-bin/message/custom/send?access_token=${t}`, {
          method: 'POST',
          body: JSON.stringify({
            touser: message.FromUserName,
            msgtype: 'text',
            text: { content: `got ${message.Content}` },
          }),
        }),
      )
      .then((r) => r.json())
      .then(() => res.reply(''))
      .catch(() => res.reply(''));
  }),
);
app.listen(Number(port), '127.0.0.1', () => console.log('listening'));
