import { readFile } from 'node:fs/promises';
import { Argument, type Command } from 'commander';
import { print, say, table } from '../cli-output.js';
import { recordHandoffChange } from '../handoff-changes.js';
import type { KfOperations, SessionView } from '../kf.js';
import type { CliContext } from './context.js';

const iso = (seconds: number | undefined) => (seconds ? new Date(seconds * 1000).toISOString() : '');

/** Why `session open|close` changed wx-kf's handoff only, by the kind of account. */
const NOTES: Readonly<Record<string, string>> = {
  miniprogram: 'Mini Programs have no session API, so WeChat was not called',
};

/** WeCom's session states (kf/service_state), as the CLI names them. */
const WECOM_STATES = ['new', 'with the bot', 'queued for a person', 'with a person', 'ended'];

function sessionLine(v: SessionView): string {
  const handoff = v.handoff
    ? `handed to a human since ${new Date(v.handoff.since).toISOString()} (${v.handoff.reason}${v.handoff.agent ? `, agent ${v.handoff.agent}` : ''}): messages are transferred, the bot is silent`
    : 'with the bot (no handoff)';
  const wechat = v.wechat
    ? v.wechat.agent
      ? `; WeChat session with ${v.wechat.agent} since ${iso(v.wechat.createdAt)}`
      : '; no WeChat session'
    : '';
  const wecom = (v.wecom ?? []).map(
    (s) =>
      `; WeCom session with ${s.openKfId}: ${WECOM_STATES[s.state] ?? `state ${s.state}`}${s.servicer ? ` (${s.servicer})` : ''}`,
  );
  return `${v.appId} / ${v.openid}: ${handoff}${wechat}${wecom.join('')}`;
}

/** Runs an operation with the accounts' WeChat operations; WeChat's refusals become one line with the errcode. */
type WithOps = (op: (ops: KfOperations) => Promise<void>) => Promise<void>;

/** Each call makes its WeChat client and closes it; the configuration is loaded only by these commands. */
function withOpsOf({ redis, config }: CliContext): WithOps {
  return async (op) => {
    // Loaded here, not at import: the queue commands start without the WeChat client's modules.
    const [{ KfOperations, describeError }, { createLogger }] = await Promise.all([
      import('../kf.js'),
      import('@wx-kf/shared/log'),
    ]);
    // Handoffs this command opens or closes are counted in Redis, for the admin listener's wxkf_handoffs_total.
    const counted: Promise<void>[] = [];
    const ops = new KfOperations(
      config.get(),
      redis,
      createLogger('queues', { level: 'silent' }),
      (change, appId, why) => counted.push(recordHandoffChange(redis, appId, change, why)),
    );
    try {
      await op(ops);
    } catch (error) {
      const described = describeError(error);
      if (!described) throw error;
      const b = described.body;
      throw new Error(b.errcode !== undefined ? `WeChat refused: ${b.errcode} ${b.errmsg}` : String(b.message));
    } finally {
      await Promise.allSettled(counted);
      await ops.close();
    }
  };
}

/** `agents list` and `agents online`. */
function registerAgentReads(agents: Command, withOps: WithOps): void {
  agents
    .command('list')
    .description('every agent (getkflist)')
    .option('--account <appId>', 'the Official Account (default: the only account)')
    .option('--json', 'machine-readable output')
    .action((opts) =>
      withOps(async (ops) => {
        const list = await ops.agents(opts.account);
        print(opts.json, list, () => {
          if (list.length === 0) return 'no agents';
          const t = table(['agent', 'nickname', 'id', 'wechat id', 'invitation']);
          for (const a of list) t.push([a.kf_account, a.kf_nick, a.kf_id, a.kf_wx ?? '', a.invite_status ?? '']);
          return t.toString();
        });
      }),
    );
  agents
    .command('online')
    .description('agents online now, with their sessions (getonlinekflist)')
    .option('--account <appId>', 'the Official Account')
    .option('--json', 'machine-readable output')
    .action((opts) =>
      withOps(async (ops) => {
        const list = await ops.onlineAgents(opts.account);
        print(opts.json, list, () => {
          if (list.length === 0) return 'no agent is online';
          const t = table(['agent', 'status', 'sessions']);
          for (const a of list) t.push([a.kf_account, a.status, a.accepted_case]);
          return t.toString();
        });
      }),
    );
}

/** `agents add`, `update`, `delete`, `avatar` and `invite`. */
function registerAgentChanges(agents: Command, withOps: WithOps): void {
  agents
    .command('add <agent> <nickname>')
    .description('add an agent: prefix@account, nickname of at most 16 characters')
    .option('--account <appId>', 'the Official Account')
    .action((agent: string, nickname: string, opts) =>
      withOps(async (ops) => {
        await ops.addAgent(opts.account, agent, nickname);
        say(`added ${agent} (${nickname}); invite a WeChat user with \`agents invite ${agent} <wechatId>\``);
      }),
    );
  agents
    .command('update <agent> <nickname>')
    .description("change an agent's nickname")
    .option('--account <appId>', 'the Official Account')
    .action((agent: string, nickname: string, opts) =>
      withOps(async (ops) => {
        await ops.updateAgent(opts.account, agent, nickname);
        say(`updated ${agent}: ${nickname}`);
      }),
    );
  agents
    .command('delete <agent>')
    .description('delete an agent')
    .option('--account <appId>', 'the Official Account')
    .action((agent: string, opts) =>
      withOps(async (ops) => {
        await ops.deleteAgent(opts.account, agent);
        say(`deleted ${agent}`);
      }),
    );
  agents
    .command('avatar <agent> <file>')
    .description("upload an agent's avatar (a JPEG, 640×640 recommended)")
    .option('--account <appId>', 'the Official Account')
    .action((agent: string, file: string, opts) =>
      withOps(async (ops) => {
        await ops.agentAvatar(opts.account, agent, await readFile(file));
        say(`avatar of ${agent} uploaded`);
      }),
    );
  agents
    .command('invite <agent> <wechatId>')
    .description('bind an agent to a WeChat user, who accepts the invitation in WeChat')
    .option('--account <appId>', 'the Official Account')
    .action((agent: string, wechatId: string, opts) =>
      withOps(async (ops) => {
        await ops.inviteAgent(opts.account, agent, wechatId);
        say(`invited ${wechatId} to be ${agent} (they accept in WeChat)`);
      }),
    );
}

/** `session open|close|show` and `sessions waiting|list`. */
function registerSessions(program: Command, withOps: WithOps): void {
  program
    .command('session')
    .description("a user's session with a human: open (hand over), close (back to the bot), show")
    .addArgument(new Argument('<action>').choices(['open', 'close', 'show']))
    .argument('<openid>', 'the user')
    .option(
      '--agent <kf>',
      'the agent (open: required on an Official Account; on a WeCom corp a servicer, else the queue; close, an Official Account: default the one holding it)',
    )
    .option(
      '--kf <open_kfid>',
      "a WeCom corp: the customer-service account (default: open, the corp's only one; else all)",
    )
    .option('--account <appId>', 'the account (default: the only account)')
    .option('--json', 'machine-readable output')
    .action((action: 'open' | 'close' | 'show', openid: string, opts) =>
      withOps(async (ops) => {
        const account = ops.account(opts.account);
        const view =
          action === 'open'
            ? await ops.openSession(account.appId, openid, opts.agent, opts.kf)
            : action === 'close'
              ? await ops.closeSession(account.appId, openid, opts.agent, opts.kf)
              : await ops.showSession(account.appId, openid, opts.kf);
        print(opts.json, view, () => {
          const note =
            NOTES[account.type] && action !== 'show' ? ` (wx-kf's handoff only: ${NOTES[account.type]})` : '';
          return `${sessionLine(view)}${note}`;
        });
      }),
    );

  program
    .command('sessions')
    .description('Official Accounts: users waiting for an agent, or one agent’s sessions')
    .addArgument(new Argument('<which>').choices(['waiting', 'list']))
    .option('--agent <kf>', 'list: the agent (getsessionlist)')
    .option('--account <appId>', 'the Official Account')
    .option('--json', 'machine-readable output')
    .action((which: 'waiting' | 'list', opts) =>
      withOps(async (ops) => {
        if (which === 'list') {
          if (!opts.agent) throw new Error('sessions list needs --agent <kf>');
          const list = await ops.agentSessions(opts.account, opts.agent);
          print(opts.json, { sessions: list }, () =>
            list.length === 0
              ? `${opts.agent} holds no session`
              : list.map((s) => `${s.openid} since ${iso(s.createtime)}`).join('\n'),
          );
          return;
        }
        const waiting = await ops.waiting(opts.account);
        print(opts.json, waiting, () =>
          waiting.count === 0
            ? 'nobody is waiting'
            : [
                `${waiting.count} waiting`,
                ...waiting.users.map((u) => `${u.openid} (last message ${iso(u.latest_time)})`),
              ].join('\n'),
        );
      }),
    );
}

/**
 * `agents …`, `session …` and `sessions …`: Official Account agents and sessions (Mini Programs and WeCom corps
 * get one line saying they have no agent API; a Mini Program's `session open|close` is wx-kf's handoff only, a
 * WeCom corp's moves WeCom's session too), with
 * `--account` and `--json`.
 */
export function registerKfCommands(program: Command, ctx: CliContext): void {
  const withOps = withOpsOf(ctx);
  const agents = program
    .command('agents')
    .description('Official Account agents (客服帐号): list, online, add, update, delete, avatar, invite');
  registerAgentReads(agents, withOps);
  registerAgentChanges(agents, withOps);
  registerSessions(program, withOps);
}
