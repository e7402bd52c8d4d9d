import type { FastifyReply, FastifyRequest } from 'fastify';
import { stringField } from './json-body.js';
import { wecomErr } from './wecom-errcodes.js';
import type { WeComState } from './wecom-state.js';

/** A kf call that passed the gate: the corp, and the JSON body (undefined when it is not a JSON object). */
export interface WeComCall {
  corpId: string;
  body: Record<string, unknown> | undefined;
}

/** The corp behind the call's access_token after the gate's latency and faults; undefined once answered. */
export type WeComAuthorise = (req: FastifyRequest, reply: FastifyReply) => Promise<WeComCall | undefined>;

/** A call about one customer of one of the corp's kf accounts. */
export interface CustomerCall {
  corpId: string;
  body: Record<string, unknown>;
  openKfId: string;
  user: string;
}

/** The call's customer (named by `userField`) and kf account, or the error WeCom answers for a bad one. */
export function customerOf(
  wecom: WeComState,
  { corpId, body }: WeComCall,
  userField: 'external_userid' | 'touser',
): CustomerCall | ReturnType<typeof wecomErr> {
  if (!body) return wecomErr('dataFormat');
  const openKfId = stringField(body.open_kfid);
  if (!wecom.kfAccount(corpId, openKfId)) return wecomErr('openKfIdNotExist');
  const user = stringField(body[userField]);
  if (!user) return wecomErr('invalidExternalUserId');
  return { corpId, body, openKfId, user };
}
