import { z } from 'zod';
import type { WeChatClient } from './client.js';
import type { WeChatHttp } from './http.js';

/** msg_sec_check's verdict on a text: `pass`, `review` (WeChat suggests a person look) or `risky`. */
export interface SecCheckVerdict {
  suggest: 'pass' | 'review' | 'risky';
  /** WeChat's label: 100 normal, 20001 politics, 20002 porn, 20006 crime, … */
  label: number;
  traceId?: string | undefined;
}

const answer = z.looseObject({
  result: z.looseObject({ suggest: z.string(), label: z.coerce.number().optional() }),
  trace_id: z.string().optional(),
});

/**
 * WeChat's text content check, `wxa/msg_sec_check` version 2 (Mini Programs and Mini Games), with the cluster's
 * token: its verdict on a text for a user who used the Mini Program in the last 2 hours.
 */
export class ContentCheck {
  constructor(
    private readonly http: WeChatHttp,
    private readonly client: WeChatClient,
  ) {}

  /** The verdict on `content` for `openid`; scene 2 (comment) by default: a reply in a conversation. */
  async check(
    appId: string,
    input: { openid: string; content: string; scene?: 1 | 2 | 3 | 4 },
  ): Promise<SecCheckVerdict> {
    const raw = await this.client.withToken(appId, (token) =>
      this.http.call('/wxa/msg_sec_check', {
        query: { access_token: token },
        json: { version: 2, scene: input.scene ?? 2, openid: input.openid, content: input.content },
      }),
    );
    const read = answer.safeParse(raw);
    // An answer without a verdict is not a pass.
    if (!read.success) return { suggest: 'risky', label: 0 };
    const { suggest, label } = read.data.result;
    return {
      suggest: suggest === 'pass' || suggest === 'review' ? suggest : 'risky',
      label: label ?? 0,
      traceId: read.data.trace_id,
    };
  }
}
