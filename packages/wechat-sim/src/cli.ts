import {
  type AccountConfig,
  ConfigError,
  hasCredentials,
  ingressPort,
  loadConfig,
  loadDotEnv,
  printConfigError,
} from '@wx-kf/shared/config';
import { windowGrant } from '@wx-kf/shared/conversation';
import { errorMessage } from '@wx-kf/shared/log';
import { decodeAesKey, decryptMessage, parseFields } from '@wx-kf/shared/wechat';
import { Command, InvalidArgumentError, Option } from 'commander';
import { request } from 'undici';
import { buildPush, deliverPush, type PushMode, verifyUrl } from './push-client.js';
import { SAMPLE_TYPES, sampleMessage } from './samples.js';
import { DEFAULT_SIM_PORT, SANDBOX_ACCOUNT } from './sandbox.js';
import { Simulator } from './server.js';
import { parsePopupChoice, popupEvent } from './subscribe.js';
import { pushWeCom, WECOM_HELP, wecomCorps } from './wecom-cli.js';

/** The WeChat account to push as: the configured one(s) when there are credentials, else the demo's sandbox. */
function pickAccount(appId: string | undefined): AccountConfig {
  // WeCom corps are pushed with --wecom (wecom-cli.ts).
  const accounts = (hasCredentials() ? loadConfig().accounts : [SANDBOX_ACCOUNT]).filter((a) => a.type !== 'wecom-kf');
  const account = appId ? accounts.find((a) => a.appId === appId) : accounts[0];
  if (!account)
    throw new InvalidArgumentError(`no configured account ${appId} (have: ${accounts.map((a) => a.appId).join(', ')})`);
  return account;
}

const int = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number');
  return n;
};

/** `--subscribe-popup <template_id>:<status>`, repeatable: the choices of one pop-up. */
const popupChoices = (value: string, previous: ReturnType<typeof parsePopupChoice>[] = []) => {
  try {
    return [...previous, parsePopupChoice(value)];
  } catch (error) {
    throw new InvalidArgumentError(errorMessage(error));
  }
};

/**
 * The simulator `push` tells about the user: `WECHAT_API_BASE` (`WECOM_API_BASE` for --wecom; environment or
 * `.env`) when it points at one, as for the ingress and the worker (not when it is WeChat's or WeCom's own API,
 * both under qq.com), else the default `sim serve` port.
 */
function simulatorUrl(variable: 'WECHAT_API_BASE' | 'WECOM_API_BASE' = 'WECHAT_API_BASE'): string {
  const base = process.env[variable]?.trim();
  if (base) {
    try {
      if (!/(^|\.)(weixin\.)?qq\.com$/.test(new URL(base).hostname)) return base.replace(/\/+$/, '');
    } catch {
      // Not a URL: the configuration check of the services says so; the push uses the default.
    }
  }
  return `http://127.0.0.1:${DEFAULT_SIM_PORT}`;
}

/** Tells the simulator what this push means on WeChat's side (best effort: it may not be running). */
const tellSim = (url: string, body: object) =>
  request(url, { method: 'POST', body: JSON.stringify(body) })
    .then((r) => r.body.dump())
    .catch(() => undefined);

loadDotEnv();

const program = new Command('pnpm sim').description('The wx-kf WeChat simulator: a fake WeChat API and a push client.');

program
  .command('push')
  .description('push a message to the ingress the way WeChat does, and print the answer')
  .option('--text <content>', 'text content (for --type text)', 'hello')
  .addOption(new Option('--type <type>', 'message or event type').choices(SAMPLE_TYPES).default('text'))
  .addOption(
    new Option('--mode <mode>', 'push mode (default: safe when the account has an AES key)').choices([
      'plain',
      'compat',
      'safe',
    ]),
  )
  .addOption(new Option('--format <format>', 'body format').choices(['xml', 'json']).default('xml'))
  .option('--account <appId>', 'account to push as (default: the first configured, or the sandbox)')
  .option('--from <openid>', 'the user', 'o_sim_user_0001')
  .option(
    '--wecom',
    'as WeCom 微信客服 instead: the simulator queues the message, the ingress gets the callback',
    false,
  )
  .option('--corp <CorpID>', '--wecom: the corp (default: the first wecom-kf account, or the sandbox)')
  .option('--kf <open_kfid>', "--wecom: the kf account (default: the corp's first)")
  .option('--user <external_userid>', '--wecom: the customer (default: wm_sim_customer_0001)')
  .option('--agent <kf>', 'kf events: the agent (KfAccount; FromKfAccount of a switch)')
  .option('--to-agent <kf>', 'kf_switch_session: the agent the session moves to (ToKfAccount)')
  .option('--url <url>', 'ingress URL (default: http://127.0.0.1:$PORT/wechat/<appId>)')
  .option('--deliveries <n>', 'deliver up to n times until accepted, like WeChat (max 4)', int, 1)
  .option(
    '--subscribe-popup <template_id:status>',
    'push a subscribe_msg_popup_event instead: the user chose accept (acceptWithAudio, reject, ban, filter) for a template; repeat for several',
    popupChoices,
  )
  .option(
    '--sim <url>',
    `simulator to tell about the user activity (opens the send window; default: WECHAT_API_BASE when it is not WeChat's, else http://127.0.0.1:${DEFAULT_SIM_PORT})`,
  )
  .action(async (opts) => {
    if (opts.wecom) {
      const sim = opts.sim ?? simulatorUrl('WECOM_API_BASE');
      const accepted = await pushWeCom({
        corp: opts.corp,
        kf: opts.kf,
        user: opts.user,
        text: opts.text,
        sim,
        url: opts.url,
      });
      process.exitCode = accepted ? 0 : 1;
      return;
    }
    opts.sim ??= simulatorUrl();
    const account = pickAccount(opts.account);
    const mode: PushMode = opts.mode ?? (account.aesKey ? 'safe' : 'plain');
    const url = opts.url ?? `http://127.0.0.1:${ingressPort()}/wechat/${account.appId}`;
    // Commander checked the choice: the find gives it its type.
    const type = SAMPLE_TYPES.find((t) => t === opts.type) ?? 'text';
    const choices: ReturnType<typeof parsePopupChoice>[] = opts.subscribePopup ?? [];
    const message = choices.length
      ? popupEvent(choices, { fromUser: opts.from })
      : sampleMessage(type, {
          content: opts.text,
          fromUser: opts.from,
          kfAccount: opts.agent,
          toKfAccount: opts.toAgent,
        });
    const push = buildPush({ account, message, mode, format: opts.format === 'json' ? 'json' : 'xml' });
    // The window this push opens on WeChat's side (none for a VIEW click or an unsubscribe).
    const action = windowGrant(account.type, message)?.trigger;
    if (action) await tellSim(`${opts.sim}/__sim/users/activity`, { appId: account.appId, openid: opts.from, action });
    // The grants the user's choices give on WeChat's side (subscribe/send answers 43101 without one).
    for (const c of choices)
      await tellSim(`${opts.sim}/__sim/subscriptions`, { appId: account.appId, openid: opts.from, ...c });
    const what = choices.length ? 'subscribe_msg_popup_event' : opts.type;
    console.log(`→ POST ${url} (${mode}, ${push.format}) ${what} from ${opts.from}`);
    console.log(`  body: ${push.body.length > 300 ? `${push.body.slice(0, 300)}…` : push.body}`);
    const deliveries = await deliverPush(url, push, { maxDeliveries: Math.min(Math.max(opts.deliveries, 1), 4) });
    for (const d of deliveries) console.log(`← ${d.status} in ${d.ms.toFixed(1)} ms: ${d.body}`);
    const last = deliveries.at(-1);
    if (last?.status === 200 && account.aesKey && last.body.includes('Encrypt')) {
      const encrypt = parseFields(last.body).Encrypt;
      if (typeof encrypt === 'string') {
        console.log(`  decrypted: ${decryptMessage(decodeAesKey(account.aesKey), encrypt, account.appId)}`);
      }
    }
    process.exitCode = deliveries.at(-1)?.status === 200 ? 0 : 1;
  });

program
  .command('verify')
  .description('send the GET URL verification WeChat sends when the URL is saved')
  .option('--account <appId>', 'account (default: the first configured, or the sandbox)')
  .option('--url <url>', 'ingress URL (default: http://127.0.0.1:$PORT/wechat/<appId>)')
  .action(async (opts) => {
    const account = pickAccount(opts.account);
    const url = opts.url ?? `http://127.0.0.1:${ingressPort()}/wechat/${account.appId}`;
    const answer = await verifyUrl(url, account, { echostr: '4375120948345356249' });
    console.log(`← ${answer.status}: ${answer.body}`);
    process.exitCode = answer.status === 200 && answer.body === '4375120948345356249' ? 0 : 1;
  });

program
  .command('serve')
  .description('run the fake WeChat API (for the configured accounts, or the sandbox)')
  .option('--port <port>', 'port', int, DEFAULT_SIM_PORT)
  .option('--host <host>', 'host', '127.0.0.1')
  .option('--send-windows', "enforce WeChat's customer-service send windows (45015 / 45047)", false)
  .option('--latency <ms>', 'answer every API call after this many ms', int, 0)
  .option('--model-key <key>', 'the fake model answers 401 unless called with Authorization: Bearer <key>')
  .option('--model-latency <ms>', "the fake model's time to first token", int, 0)
  .option('--model-tps <n>', "the fake model's tokens per second (0: all at once)", int, 0)
  .addHelpText(
    'after',
    `
WeChat API served: GET /cgi-bin/token, POST /cgi-bin/stable_token, POST /cgi-bin/message/custom/send,
  POST /cgi-bin/message/custom/typing, POST /cgi-bin/media/upload, GET /cgi-bin/media/get,
  Official Accounts: GET /cgi-bin/customservice/getkflist|getonlinekflist, /customservice/kfaccount/
  add|update|del|inviteworker|uploadheadimg, /customservice/kfsession/create|close|getsession|getsessionlist|
  getwaitcase; Mini Programs: GET /sns/jscode2session, POST /wxa/msg_sec_check (version 2: a text with
  "#risky" is risky, with "#review" review, else pass)
  Notifications: POST /cgi-bin/message/subscribe/send (Mini Programs), /cgi-bin/message/subscribe/bizsend and
  /cgi-bin/message/template/send (Official Accounts), GET /wxaapi/newtmpl/gettemplate: templates
  SIM_TPL_ORDER_SHIPPED, SIM_TPL_REMINDER (one-time), SIM_TPL_PROGRESS (long-term), SIM_OA_TPL_ORDER (template
  messages); 43101 without a grant from a pop-up accept, 47003 naming a data value over its kind's limit, 41030
  for a page under pages/missing

Fake model (OpenAI-compatible, base URL <url>/v1): POST /v1/chat/completions (plain and "stream": true),
  GET /v1/models. Answers start with a context line:
    [fake model] messages=3 system=1 user=2 assistant=0 tool=0 last="<the last user message>"
  the last user message "#long 9000" answers 9000 bytes of paragraphs; "#human" (or 人工, 真人, human, person)
  calls the tool transfer_to_human when the request offers it; max_tokens cuts an answer (finish_reason "length")

Control and inspection under /__sim/ (not WeChat's API; POST bodies are JSON; rules add up until a reset):
  GET  /__sim/state           accounts, token requests per account, counts of messages, typing calls, media
  GET  /__sim/messages        the custom/send bodies received, in order (?appId=…&touser=… filter them)
  POST /__sim/faults          a fault rule for one API path; its script is played one fault per call, then
                              calls answer normally:
                                {"path":"/cgi-bin/message/custom/send","script":[{"errcode":45015},{"http":503},"ok"]}
                              or at random, repeatably: {"path":"…","rate":0.3,"faults":[…],"seed":7}
                              a fault: {"errcode":-1,"errmsg":"…"}, {"http":502}, {"delayMs":6000} (then a normal
                              answer), {"drop":true} (connection closed), {"hang":true} (no answer until the
                              client gives up) or "ok"; "appId":"…" limits a rule to one account
  POST /__sim/latency         delay matching calls: {"fixedMs":200} or {"minMs":5,"maxMs":50,"seed":1};
                              "path" and "appId" narrow it (the first matching rule applies)
  POST /__sim/reset           clear messages, tokens, media, send windows, model calls and settings, and every
                              fault and latency rule
  GET  /__sim/model           the fake model's settings, calls (messages sent, outcome), inFlight, maxInFlight
  POST /__sim/model           {"latencyMs":800,"tokensPerSecond":40,"key":"sk-…"|null}: change it at run time
                              (model faults: a fault rule with "path":"/v1/chat/completions"; faults
                              {"http":429,"retryAfterMs":500}, {"http":500}, {"hang":true}, {"delayMs":…}, {"drop":true})
  POST /__sim/users/activity  {"appId":"…","openid":"…","action":"message"|"enter_session"|"click"|"subscribe"|"scan"}
                              opens that user's send window (pnpm sim push does it for you; it matters with --send-windows)
  POST /__sim/accounts/<appId>/invalidate-tokens   every token issued so far answers 40001
  POST /__sim/kf/agent        {"appId","kf_account","online":true,"accept":true}: an agent comes online / accepts
                              the invitation (sessions need both)
  POST /__sim/kf/waiting      {"appId","openid"}: the user waits for an agent (getwaitcase lists them)
  POST /__sim/login           {"appId","openid","unionid"?,"risky"?}: a login code for jscode2session (single use)
  POST /__sim/subscriptions   {"appId","openid","templateId","status":"accept"|"reject"|…}: the user's choice in a
                              pop-up (pnpm sim push --subscribe-popup does it for you)
  GET  /__sim/subscriptions   a user's grants by template (?appId=…&openid=…)
  GET  /__sim/notifications   the notifications sent, in order (?appId=…&touser=… filter them)

${WECOM_HELP}
Example: curl -X POST http://127.0.0.1:${DEFAULT_SIM_PORT}/__sim/faults -d '{"path":"/cgi-bin/message/custom/send","script":[{"errcode":-1}]}'
`,
  )
  .action(async (opts) => {
    const configured = hasCredentials() ? loadConfig().accounts : [SANDBOX_ACCOUNT];
    const accounts = configured
      .filter((a) => a.type !== 'wecom-kf')
      .map(({ appId, appSecret, type }) => ({ appId, appSecret, type }));
    const corps = wecomCorps(configured);
    const sim = new Simulator({
      accounts,
      wecom: {
        corps,
        onSend: (m) => console.log(`[simulator] kf/send_msg → ${m.touser}: ${JSON.stringify(m.body)}`),
      },
      sendWindows: opts.sendWindows,
      model: { key: opts.modelKey, latencyMs: opts.modelLatency, tokensPerSecond: opts.modelTps },
      onMessage: (m) => console.log(`[simulator] custom/send → ${m.touser}: ${JSON.stringify(m.body)}`),
    });
    if (opts.latency > 0) sim.slow({ fixedMs: opts.latency });
    const url = await sim.listen(opts.port, opts.host);
    console.log(
      `[simulator] THIS IS A SIMULATOR, NOT WECHAT. Fake WeChat API on ${url} for ${accounts.map((a) => a.appId).join(', ')}`,
    );
    console.log(`[simulator] Fake WeCom 微信客服 API on ${url} for ${corps.map((c) => c.corpId).join(', ')}`);
    console.log(
      `[simulator] THIS IS A FAKE LANGUAGE MODEL, NOT A REAL ONE: OpenAI-compatible base URL ${url}/v1 (model ${sim.model.settings.name}${opts.modelKey ? ', key required' : ''})`,
    );
    console.log(`[simulator] inspect: ${url}/__sim/state, ${url}/__sim/messages, ${url}/__sim/model`);
    if (url !== `http://127.0.0.1:${DEFAULT_SIM_PORT}`) {
      console.log(
        `[simulator] services and \`pnpm sim push\` find it with WECHAT_API_BASE=${url} (WeCom: WECOM_API_BASE=${url})`,
      );
    }
    // `on`, not `once`: Ctrl-C under pnpm arrives twice (terminal and pnpm), and a second signal with no
    // listener left would kill the process before it closed.
    let stopping = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      void sim.close().then(() => process.exit(0));
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });

program.parseAsync().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    printConfigError('sim', error);
  } else {
    console.error(`sim: ${errorMessage(error)}`);
  }
  process.exit(1);
});
