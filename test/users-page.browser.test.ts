// The conversation view (`/users`) in headless Chromium, on a conversation made by the real path: pushes through
// the ingress, replies from a worker to the WeChat simulator, a transfer rule handing the user to a human. The
// screenshots land in test-artifacts/; with UPDATE_SCREENSHOTS=1 also in docs/images/ (docs/operating.md shows them).
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RunningAdmin, startAdmin } from '@wx-kf/admin';
import { buildApp } from '@wx-kf/ingress';
import { loadConfig } from '@wx-kf/shared/config';
import { createLogger } from '@wx-kf/shared/log';
import { INBOUND_QUEUE, openShardQueues } from '@wx-kf/shared/queue';
import { createRedis, Keyspace, type RedisClient } from '@wx-kf/shared/redis';
import { freePort, isolatedRedisUrl } from '@wx-kf/testkit';
import { buildPush, Simulator, sampleMessage } from '@wx-kf/wechat-sim';
import { type RunningWorker, startWorker } from '@wx-kf/worker';
import { type Browser, type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const APP = 'wxuserspagedemo01';
const TOKEN = 'usersPageToken';
const USER = 'o6_bmjrPTlm6_2sgVt7hMZOPfL2M';
const PASSWORD = 'users-page-browser';
const ARTIFACTS = new URL('../test-artifacts/', import.meta.url);
const DOCS_IMAGES = new URL('../docs/images/', import.meta.url);
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const rules = join(mkdtempSync(join(tmpdir(), 'wx-kf-users-page-')), 'rules.yaml');
writeFileSync(
  rules,
  `rules:
  - when: { msgType: text, contains: 人工 }
    transfer: {}
  - when: { msgType: text, contains: 价格 }
    reply:
      - { msgtype: text, text: { content: "价格请见小程序首页的价目表。" } }
      - { msgtype: text, text: { content: "还有别的问题吗？" } }
fallback: [{ msgtype: text, text: { content: "你好！有什么可以帮你？" } }]
`,
);

const sim = new Simulator({ accounts: [{ appId: APP, appSecret: 'secret', type: 'miniprogram' }] });
let producer: RedisClient;
let ingress: ReturnType<typeof buildApp>;
let worker: RunningWorker;
let admin: RunningAdmin;
let browser: Browser;

async function say(content: string, msgId: string): Promise<void> {
  const message = sampleMessage('text', { fromUser: USER, content, createTime: Math.floor(Date.now() / 1000) });
  message.MsgId = msgId;
  sim.state.observe(APP, message);
  const p = buildPush({ account: { appId: APP, token: TOKEN }, message, mode: 'plain', format: 'xml' });
  const res = await ingress.inject({
    method: 'POST',
    url: `/wechat/${APP}?${new URLSearchParams(p.query)}`,
    payload: p.body,
    headers: { 'content-type': p.contentType },
  });
  expect(res.statusCode).toBe(200);
}
async function until(what: string, check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
async function screenshot(page: import('playwright-core').Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: new URL(name, ARTIFACTS).pathname, fullPage: true });
  if (process.env.UPDATE_SCREENSHOTS === '1') {
    mkdirSync(DOCS_IMAGES, { recursive: true });
    await page.screenshot({ path: new URL(name, DOCS_IMAGES).pathname, fullPage: true });
  }
}

beforeAll(async () => {
  await sim.listen();
  const redisUrl = await isolatedRedisUrl();
  const config = loadConfig({
    REDIS_URL: redisUrl,
    REDIS_SHARDS: '16', // as on a cluster: the user's jobs are on a shard of their own, the dashboard shows it
    WECHAT_API_BASE: sim.url,
    WECHAT_APP_ID: APP,
    WECHAT_APP_SECRET: 'secret',
    WECHAT_TOKEN: TOKEN,
    WECHAT_ACCOUNT_TYPE: 'miniprogram',
    REPLY_RULES_FILE: rules,
    ADMIN_HOST: '127.0.0.1',
    ADMIN_PORT: String(await freePort()),
    ADMIN_PASSWORD: PASSWORD,
  });
  const logger = createLogger('users-page-browser', { level: 'silent' });
  producer = createRedis(config.redis, 'producer');
  ingress = buildApp({ config, queue: openShardQueues(INBOUND_QUEUE, producer), redis: producer, logger });
  worker = await startWorker(config, logger);
  admin = (await startAdmin(config, logger)) as RunningAdmin;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
  });

  // A conversation: a greeting and a question answered by the bot, then a request for a person (transferred by the
  // rule, which opens the handoff), and a message while the user is with a human (transferred, no bot reply).
  await say('你好', '24100000000000001');
  await until('the greeting answered', () => sim.state.messagesFor(APP, USER).length === 1);
  await say('价格是多少？', '24100000000000002');
  await until('the price answered', () => sim.state.messagesFor(APP, USER).length === 3);
  await say('转人工', '24100000000000003');
  await say('我的订单 42 号怎么还没发货？', '24100000000000004');
  expect(new Keyspace(16).userShard(APP, USER)).toBeGreaterThan(0); // not the first shard: the lookups must find it
  const inbound = openShardQueues(INBOUND_QUEUE, producer);
  const completed = async () => (await Promise.all(inbound.map((q) => q.getCompletedCount()))).reduce((a, b) => a + b);
  await until('every message handled', async () => (await completed()) === 4);
  await Promise.all(inbound.map((q) => q.close()));
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await admin?.close();
  await worker?.close();
  await ingress?.close();
  producer?.disconnect();
  await sim.close();
});

/** A logged-in browser context that records every request and any CSP complaint. */
async function operator(): Promise<{ context: BrowserContext; requested: string[]; cspErrors: string[] }> {
  const context = await browser.newContext({
    httpCredentials: { username: 'admin', password: PASSWORD },
    viewport: { width: 1280, height: 900 },
  });
  const requested: string[] = [];
  const cspErrors: string[] = [];
  context.on('request', (r) => requested.push(r.url()));
  context.on('console', (m) => {
    if (m.type() === 'error' && m.text().includes('Content Security Policy')) cspErrors.push(m.text());
  });
  return { context, requested, cspErrors };
}

describe('the users page in headless Chromium', () => {
  it('is refused without the login', async () => {
    const page = await browser.newPage();
    expect((await page.request.get(`${admin.url}/users`)).status()).toBe(401);
    await page.close();
  });

  it('looks a user up and shows window, handoff, timeline with transfers and job links (screenshot saved)', async () => {
    const { context, requested, cspErrors } = await operator();
    const page = await context.newPage();
    await page.goto(`${admin.url}/users`);
    await page.selectOption('select[name=appId]', APP);
    await page.fill('input[name=user]', USER);
    await page.click('button[type=submit]');
    await page.waitForURL(`${admin.url}/users/${APP}/${USER}`);
    await expect(page.locator('#window').textContent()).resolves.toMatch(
      /Open until [\d-]+T[\d:.]+Z[1-5] send\(s\) left/,
    );
    await expect(page.locator('#handoff').textContent()).resolves.toContain('With a human agent since');
    // Each row's cells: when, direction, kind, text, outcome, job.
    const rows = await page
      .locator('tbody tr')
      .evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
    expect(rows.map((r) => r[1])).toEqual(['in', 'out', 'in', 'out', 'out', 'transfer', 'transfer']);
    expect(rows.filter((r) => r[1] === 'out').map((r) => r[4])).toEqual(['sent', 'sent', 'sent']);
    expect(rows[0]?.slice(3, 5)).toEqual(['你好', 'answered (1 reply)']);
    expect(rows[5]?.[4]).toBe('transferred to 客服 (a human agent)');
    expect(rows[6]?.[4]).toBe('with a human agent: the bot sent nothing');
    await screenshot(page, 'users.png');

    // A message's job, in the dashboard: the link opens it there.
    await page.click('a[href$="-m24100000000000004"]');
    await page.waitForURL(/\/ui\/queue\/inbound\//);
    await page.getByText('24100000000000004', { exact: false }).first().waitFor({ timeout: 15_000 });
    // 16 shards, and the dashboard names two queues: no `s10.inbound`.
    await expect(page.getByText(/^s\d+\.(inbound|outbound)$/).count()).resolves.toBe(0);
    const queueLinks = await page
      .getByRole('link', { name: /^(inbound|outbound)$/ })
      .evaluateAll((links) => links.map((a) => a.getAttribute('href') ?? ''));
    expect(new Set(queueLinks.map((href) => new URL(href, admin.url).pathname))).toEqual(
      new Set(['/ui/queue/inbound', '/ui/queue/outbound']),
    );
    await context.close();
    expect(requested.filter((url) => !/^(https?:\/\/127\.0\.0\.1[:/]|data:|blob:)/.test(url))).toEqual([]);
    expect(cspErrors).toEqual([]);
  });

  it('closes the handoff after a confirm step (screenshot saved), then erases the user after another', async () => {
    const { context, cspErrors } = await operator();
    const page = await context.newPage();
    await page.goto(`${admin.url}/users/${APP}/${USER}`);
    await page.getByText('Close the handoff…').click();
    await page.getByText('Close the handoff of this user?').waitFor();
    await screenshot(page, 'users-confirm.png');
    await page.getByRole('button', { name: 'Close the handoff' }).click();
    await page.waitForURL(/done=handoff-closed/);
    await expect(page.locator('.notice').textContent()).resolves.toContain('The handoff was closed');
    await expect(page.locator('#handoff').textContent()).resolves.toContain('With the bot');

    await page.getByText('Erase this user…').click();
    await page.getByRole('button', { name: 'Erase this user' }).click();
    await expect(page.locator('main').textContent()).resolves.toMatch(/Erased[\s\S]*timeline entries: 7/);
    await page.goto(`${admin.url}/users/${APP}/${USER}`);
    await expect(page.locator('main').textContent()).resolves.toContain('Nothing in the timeline');
    await context.close();
    expect(cspErrors).toEqual([]);
  });
});
