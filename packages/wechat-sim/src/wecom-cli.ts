import { createHash } from 'node:crypto';
import { type AccountConfig, hasCredentials, ingressPort, loadConfig } from '@wx-kf/shared/config';
import { InvalidArgumentError } from 'commander';
import { request } from 'undici';
import { isRecord } from './json-body.js';
import { SANDBOX_WECOM } from './sandbox.js';
import type { SimCorp } from './wecom-core.js';
import { notify } from './wecom-push.js';

/**
 * The corps `pnpm sim serve` serves: each configured `wecom-kf` account, with one kf account whose open_kfid is
 * derived from the CorpID (the same in every run; the services find it with account/list), then the sandbox's.
 */
export function wecomCorps(accounts: readonly AccountConfig[]): SimCorp[] {
  const configured = accounts.flatMap((a) =>
    a.type === 'wecom-kf' && a.aesKey && a.appId !== SANDBOX_WECOM.corpId
      ? [
          {
            corpId: a.appId,
            secret: a.appSecret,
            token: a.token,
            aesKey: a.aesKey,
            kfAccounts: [{ openKfId: simulatedKfId(a.appId), name: 'Simulated 客服' }],
          },
        ]
      : [],
  );
  return [...configured, SANDBOX_WECOM];
}

const simulatedKfId = (corpId: string) => `wk${createHash('sha256').update(corpId).digest('hex').slice(0, 30)}`;

/** The corp to push as: the first configured `wecom-kf` account, else the sandbox's (or the one named). */
function pickCorp(corpId: string | undefined): SimCorp {
  const corps = wecomCorps(hasCredentials() ? loadConfig().accounts : []);
  const corp = corpId ? corps.find((c) => c.corpId === corpId) : corps[0];
  if (!corp) {
    throw new InvalidArgumentError(`no wecom-kf account ${corpId} (have: ${corps.map((c) => c.corpId).join(', ')})`);
  }
  return corp;
}

export interface WeComPushOptions {
  corp?: string;
  kf?: string;
  user?: string;
  text: string;
  /** The simulator's base URL. */
  sim: string;
  /** The ingress: its base URL, or the corp's callback URL (`…/wechat/<CorpID>`). */
  url?: string;
}

/**
 * `pnpm sim push --wecom`: the running simulator queues the customer's message (and hands a sync Token), then
 * the encrypted kf_msg_or_event notice goes to the ingress, which pulls the message with sync_msg. True when
 * the ingress answered 200.
 */
export async function pushWeCom(options: WeComPushOptions): Promise<boolean> {
  const corp = pickCorp(options.corp);
  const queued = await queueMessage(options, corp.corpId);
  const base = (options.url ?? `http://127.0.0.1:${ingressPort()}`).replace(/\/wechat\/[^/]*\/?$/, '');
  console.log(`→ simulator queued ${queued.msgid} from ${queued.user} to ${queued.openKfId} (corp ${corp.corpId})`);
  console.log(`→ POST ${base}/wechat/${corp.corpId} kf_msg_or_event (Token ${queued.token})`);
  const answer = await notify(base, corp, queued.openKfId, { token: queued.token });
  for (const d of answer.deliveries) console.log(`← ${d.status} in ${d.ms.toFixed(1)} ms: ${d.body}`);
  return answer.status === 200;
}

/** Asks the simulator to queue the message; throws with a hint when it is not running or refuses. */
async function queueMessage(options: WeComPushOptions, corpId: string) {
  const body = { corpId, openKfId: options.kf, externalUserId: options.user, content: options.text };
  const res = await request(`${options.sim}/__sim/wecom/customer-message`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  }).catch((error: unknown) => {
    throw new Error(`no simulator at ${options.sim} (start one with pnpm sim serve): ${String(error)}`);
  });
  const answer: unknown = await res.body.json();
  const item = isRecord(answer) && isRecord(answer.item) ? answer.item : undefined;
  if (res.statusCode !== 200 || !item || !isRecord(answer) || typeof answer.token !== 'string') {
    throw new Error(`the simulator at ${options.sim} refused the message: ${JSON.stringify(answer)}`);
  }
  const field = (name: string) => (typeof item[name] === 'string' ? item[name] : '');
  return { msgid: field('msgid'), user: field('external_userid'), openKfId: field('open_kfid'), token: answer.token };
}

/** `pnpm sim serve --help`'s part about WeCom. */
export const WECOM_HELP = `
WeCom 微信客服 (the pull channel; point WECOM_API_BASE at the simulator): GET /cgi-bin/gettoken, POST
  /cgi-bin/kf/sync_msg, /cgi-bin/kf/send_msg, /cgi-bin/kf/send_msg_on_event, /cgi-bin/kf/service_state/get|trans,
  /cgi-bin/kf/account/list, POST /cgi-bin/media/upload with a corp's token (image, voice, video, file; send_msg
  refuses any other media_id with 40007), for the sandbox corp ${SANDBOX_WECOM.corpId} (kf ${SANDBOX_WECOM.kfAccounts[0]?.openKfId})
  and each configured wecom-kf account. Control under /__sim/wecom/ (JSON; corpId, openKfId, externalUserId
  default to the first corp, its first kf account, wm_sim_customer_0001):
  POST /__sim/wecom/<what>          customer-message {content}, customer-messages {n}, history {daysAgo,count},
                                    enter-session {scene}, agent-message {content}, agent-takes {servicer},
                                    agent-ends, send-failed {failMsgid}, user-recall {recallMsgid}: each answers
                                    the item and a fresh sync Token
  POST /__sim/wecom/token           {ageMs}: a sync Token (already that old)
  POST /__sim/wecom/expire-tokens   {corpId}: every access_token issued so far answers 42001
  GET  /__sim/wecom/state           a session's service_state (?corpId&openKfId&externalUserId)
  GET  /__sim/wecom/sent            the messages delivered (?corpId&touser)
  GET  /__sim/wecom/stats           token requests, sync calls (and how many overlapped), duplicate sends
  GET  /__sim/wecom/trans           the service_state/trans calls
  GET  /__sim/wecom/corps           the corps and their kf accounts
  pnpm sim push --wecom --text hi queues a customer message and sends the encrypted callback to the ingress.
`;
