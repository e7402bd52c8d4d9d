import type { Erasure, WindowView } from '@wx-kf/shared/conversation';
import type { HandoffState } from '@wx-kf/shared/handoff';
import type { UserAction } from './action-tokens.js';
import { esc, jobPath, layout, pagePath } from './html.js';
import type { TimelineRow, UserRecord } from './record.js';

/** A configured account as the lookup form lists it. */
export interface AccountChoice {
  appId: string;
  type: string;
}

const TRIGGERS: Readonly<Record<string, string>> = {
  message: 'a message from the user',
  enter_session: 'the user entering the chat',
  click: 'a menu click',
  subscribe: 'a follow',
  scan: 'a QR code scan',
};

/** What an action did, said on the user's page after it (`?done=`). */
export const DONE: Readonly<Record<string, string>> = {
  'handoff-closed': 'The handoff was closed: the bot answers again.',
};

/** The lookup form: an account and a user's OpenID (or WeCom external_userid). */
export function lookupForm(accounts: readonly AccountChoice[], appId = '', user = ''): string {
  const options = accounts
    .map(
      (a) =>
        `<option value="${esc(a.appId)}"${a.appId === appId ? ' selected' : ''}>${esc(a.appId)} (${esc(a.type)})</option>`,
    )
    .join('');
  return `<form class="lookup" method="get" action="/users">
<label>Account<select name="appId" required>${options}</select></label>
<label>OpenID (or external_userid)<input name="user" value="${esc(user)}" required maxlength="64" pattern="[A-Za-z0-9_\\-]{1,64}" placeholder="o6_bmjrPTlm6_2sgVt7hMZOPfL2M"></label>
<button type="submit">Look up</button>
</form>`;
}

/** `/users`: the lookup form, with a problem to say when there is one. */
export function lookupPage(accounts: readonly AccountChoice[], problem?: string, appId = '', user = ''): string {
  const said = problem ? `<p class="error">${esc(problem)}</p>` : '';
  const body = `<h1>Conversations</h1>
<p class="muted">What happened with a user: their send window, whether a human has them, and the timeline of their messages and our replies.</p>
${said}${lookupForm(accounts, appId, user)}`;
  return layout('Conversations', body);
}

function windowCard(w: WindowView): string {
  const state = w.open
    ? `<p class="state open">Open until <time>${esc(w.until)}</time></p><p>${esc(w.left)} send(s) left</p>`
    : `<p class="state closed">Closed${w.until ? ` since <time>${esc(w.until)}</time>` : ''}</p><p>No send can reach the user until they act again.</p>`;
  const trigger = w.trigger ? `<p class="muted">Opened by ${esc(TRIGGERS[w.trigger] ?? w.trigger)}</p>` : '';
  return `<section class="card" id="window"><h2>Send window</h2>${state}${trigger}</section>`;
}

function grantsCard(grants: Record<string, number>): string {
  const rows = Object.entries(grants).map(([template, n]) => `<li><code>${esc(template)}</code> × ${esc(n)}</li>`);
  const body = rows.length
    ? `<ul>${rows.join('')}</ul>`
    : '<p class="muted">None: a subscribe message needs the user to accept its template first.</p>';
  return `<section class="card" id="grants"><h2>Subscribe grants</h2>${body}</section>`;
}

function handoffCard(r: UserRecord): string {
  const h: HandoffState | undefined = r.handoff;
  const since = (s: HandoffState) => new Date(s.since).toISOString();
  let state: string;
  if (h?.open) {
    const agent = h.agent ? `, agent <code>${esc(h.agent)}</code>` : '';
    state = `<p class="state human">With a human agent since <time>${esc(since(h))}</time></p>
<p>Opened by: ${esc(h.reason)}${agent}. The user's messages are transferred; the bot sends nothing.</p>
<div class="actions"><a class="button" href="${esc(pagePath(r.appId, r.openid, 'close-handoff'))}">Close the handoff…</a></div>`;
  } else if (h) {
    state = `<p class="state">With the bot</p><p class="muted">Handoff closed at <time>${esc(since(h))}</time> (${esc(h.reason)}).</p>`;
  } else {
    state = '<p class="state">With the bot</p><p class="muted">No handoff to a human agent.</p>';
  }
  return `<section class="card" id="handoff"><h2>Handoff</h2>${state}</section>`;
}

function timelineRow(e: TimelineRow): string {
  const dir = e.transfer ? 'transfer' : e.direction;
  const label = e.transfer ? 'transfer' : e.direction;
  const job = e.job
    ? `<a href="${esc(jobPath(e.job.queue, e.job.id))}"><code>${esc(e.job.id)}</code></a>`
    : e.jobId
      ? `<code>${esc(e.jobId)}</code> <span class="muted">(no longer kept)</span>`
      : '';
  return `<tr><td class="when"><time>${esc(e.at)}</time></td><td><span class="dir ${dir}">${label}</span></td><td>${esc(e.kind)}</td><td class="text">${esc(e.summary)}</td><td class="outcome ${e.tone}">${esc(e.outcome)}</td><td>${job}</td></tr>`;
}

/** `/users/<appId>/<openid>`: the window, the handoff, the timeline and the operator's actions. */
export function userPage(r: UserRecord, accounts: readonly AccountChoice[], done?: string): string {
  const notice = done && DONE[done] ? `<p class="notice">${esc(DONE[done])}</p>` : '';
  const rows = r.timeline.map(timelineRow).join('\n');
  const timeline = r.timeline.length
    ? `<table><thead><tr><th>When (UTC)</th><th></th><th>Kind</th><th>Text</th><th>Outcome</th><th>Job</th></tr></thead><tbody>
${rows}
</tbody></table>`
    : '<p class="muted">Nothing in the timeline: no message from or to this user within its age cap (or the timeline is off).</p>';
  const body = `${lookupForm(accounts, r.appId, r.openid)}
${notice}<h1>${esc(r.openid)} <span class="muted">on ${esc(r.appId)}</span></h1>
<div class="cards">${windowCard(r.window)}${grantsCard(r.grants)}${handoffCard(r)}
<section class="card" id="erase"><h2>Erase</h2><p class="muted">Everything kept about this user: window, order, timeline, AI context, handoff, the queue jobs of their messages.</p>
<div class="actions"><a class="button danger" href="${esc(pagePath(r.appId, r.openid, 'erase'))}">Erase this user…</a></div></section>
</div>
<h2>Timeline <span class="muted">(oldest first, times in UTC)</span></h2>
${timeline}`;
  return layout(`${r.openid} on ${r.appId}`, body);
}

const CONFIRM: Readonly<Record<UserAction, { question: string; detail: string; button: string }>> = {
  'close-handoff': {
    question: 'Close the handoff of this user?',
    detail:
      'The bot answers their next messages again. On an Official Account, the WeChat session with the agent is closed too.',
    button: 'Close the handoff',
  },
  erase: {
    question: 'Erase everything kept about this user?',
    detail:
      'Their send window, the order of their messages, the timeline, the AI context, the handoff and the queue jobs of their messages are deleted (a job being processed is left to finish). This cannot be undone.',
    button: 'Erase this user',
  },
};

/** The confirm step of an action: what it does, and a form that POSTs it with its token. */
export function confirmPage(action: UserAction, appId: string, openid: string, token: string): string {
  const c = CONFIRM[action];
  const back = pagePath(appId, openid);
  const body = `<h1>${esc(c.question)}</h1>
<p><code>${esc(openid)}</code> on <code>${esc(appId)}</code></p>
<p>${esc(c.detail)}</p>
<form method="post" action="${esc(pagePath(appId, openid, action))}">
<input type="hidden" name="token" value="${esc(token)}">
<div class="actions"><button type="submit" class="${action === 'erase' ? 'danger' : ''}">${esc(c.button)}</button><a class="button secondary" href="${esc(back)}">Cancel</a></div>
</form>`;
  return layout(c.question, body);
}

/** After an erasure: what was erased, kind by kind. */
export function erasedPage(e: Erasure): string {
  const x = e.erased;
  const kinds: [string, number][] = [
    ['send window', x.window],
    ['messages in order', x.order],
    ['timeline entries', x.timelineEntries],
    ['AI context entries', x.contextEntries],
    ['handoff', x.handoff],
    ['stored model answers', x.storedAnswers],
    ['subscribe grants', x.grants],
    ['queue jobs', x.jobs],
  ];
  const items = kinds.map(([kind, n]) => `<li>${esc(kind)}: ${esc(n)}</li>`).join('');
  const running = e.jobsRunning ? `<p>${esc(e.jobsRunning)} job(s) being processed were left to finish.</p>` : '';
  const body = `<p class="notice">Erased <code>${esc(e.openid)}</code> on <code>${esc(e.appId)}</code>.</p>
<ul>${items}</ul>${running}<p><a href="/users">Look up another user</a></p>`;
  return layout('Erased', body);
}

/** A refusal or a failure, as a page: what went wrong and the way back. */
export function problemPage(title: string, message: string, back = '/users'): string {
  return layout(
    title,
    `<h1>${esc(title)}</h1><p class="error">${esc(message)}</p><p><a href="${esc(back)}">Back</a></p>`,
  );
}
