// The `wechat` middleware ships no types; this is the part the benchmark uses.
declare module 'wechat' {
  import type { RequestHandler } from 'express';
  export default function wechat(
    config: { token: string | undefined; appid: string | undefined; encodingAESKey: string | undefined },
    handler: (req: unknown, res: { reply(content: string): void }) => void,
  ): RequestHandler;
}
