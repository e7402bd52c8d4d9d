import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { err } from './answers.js';
import { parseJsonBody } from './json-body.js';
import type { SimState } from './state.js';

/** Text containing this is `risky` for the fake msg_sec_check (label 20001); `#review` is `review`. */
export const RISKY_MARKER = '#risky';
export const REVIEW_MARKER = '#review';

/** One msg_sec_check call as tests read it. */
export interface SecCheckCall {
  appId: string;
  openid: string;
  scene: number;
  content: string;
  suggest: 'pass' | 'review' | 'risky';
}

/**
 * `POST /wxa/msg_sec_check` (version 2), deterministic: a text with `#risky` (or 违禁) is risky, with `#review`
 * review, anything else passes. WeChat's argument errors are answered as WeChat does; Official Accounts get
 * 48001 (the API is for Mini Programs and Mini Games). Faults and latency by path, like every route.
 */
export function secCheckRoutes(
  app: FastifyInstance,
  state: SimState,
  calls: SecCheckCall[],
  authorise: (req: FastifyRequest, reply: FastifyReply) => Promise<string | undefined>,
): void {
  app.post('/wxa/msg_sec_check', async (req, reply) => {
    const appId = await authorise(req, reply);
    if (!appId) return reply;
    if (state.accounts.get(appId)?.type !== 'miniprogram') return err(48001, 'api unauthorized');
    const body = parseJsonBody(req.body);
    if (body?.version !== 2) return err(47001, 'data format error');
    const { openid, scene, content } = body;
    if (typeof openid !== 'string' || openid === '') return err(40003, 'invalid openid');
    if (typeof scene !== 'number' || ![1, 2, 3, 4].includes(scene)) return err(40129, 'invalid scene');
    if (typeof content !== 'string' || content === '') return err(44002, 'empty post data');
    if ([...content].length > 2500) return err(47001, 'data format error: content over 2500 characters');
    const suggest =
      content.includes(RISKY_MARKER) || content.includes('违禁')
        ? 'risky'
        : content.includes(REVIEW_MARKER)
          ? 'review'
          : 'pass';
    calls.push({ appId, openid, scene, content, suggest });
    const label = suggest === 'pass' ? 100 : 20001;
    return {
      errcode: 0,
      errmsg: 'ok',
      result: { suggest, label },
      detail: [{ strategy: 'content_model', errcode: 0, suggest, label, prob: suggest === 'pass' ? 0 : 90 }],
      trace_id: `sim-${calls.length}`,
    };
  });
}
