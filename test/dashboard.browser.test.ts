import { mkdirSync } from 'node:fs';
import { type RunningAdmin, startAdmin } from '@wx-kf/admin';
import { loadConfig } from '@wx-kf/shared/config';
import { createLogger } from '@wx-kf/shared/log';
import { OUTBOUND_JOB_OPTIONS, OUTBOUND_QUEUE, openQueue, QUEUE_PREFIX } from '@wx-kf/shared/queue';
import { createRedis } from '@wx-kf/shared/redis';
import { freePort, isolatedRedisUrl } from '@wx-kf/testkit';
import { UnrecoverableError, Worker } from 'bullmq';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ARTIFACTS = new URL('../test-artifacts/', import.meta.url);
// As the machine notes require: no background networking, no GPU, a fresh profile.
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

let admin: RunningAdmin;
let browser: Browser;

beforeAll(async () => {
  const redisUrl = await isolatedRedisUrl();
  const config = loadConfig({
    REDIS_URL: redisUrl,
    WECHAT_APP_ID: 'wxdashboard000001',
    WECHAT_APP_SECRET: 's',
    WECHAT_TOKEN: 'tok123',
    ADMIN_HOST: '127.0.0.1',
    ADMIN_PORT: String(await freePort()),
    ADMIN_PASSWORD: 'dashboard-pass',
  });
  const redis = createRedis(redisUrl, 'client');
  const outbound = openQueue(OUTBOUND_QUEUE, redis);
  await outbound.add(
    'send',
    { appId: 'wxdashboard000001', touser: 'o_late', replies: [], sent: 0, source: 'api', msgKey: 'k' },
    { ...OUTBOUND_JOB_OPTIONS, jobId: 'late-reply' },
  );
  const worker = new Worker(
    OUTBOUND_QUEUE,
    async () => {
      throw new UnrecoverableError('45015 response out of time limit or subscription is canceled');
    },
    { connection: createRedis(redisUrl, 'worker'), prefix: QUEUE_PREFIX },
  );
  while ((await outbound.getFailedCount()) < 1) await new Promise((r) => setTimeout(r, 20));
  await worker.close();
  await outbound.close();
  redis.disconnect();
  admin = (await startAdmin(config, createLogger('dashboard', { level: 'silent' }))) as RunningAdmin;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
  });
});
afterAll(async () => {
  await browser?.close();
  await admin?.close();
});

describe('dashboard in headless Chromium', () => {
  it('is refused without credentials', async () => {
    const page = await browser.newPage();
    // Chromium gives up on an unanswered basic-auth challenge: the navigation fails, nothing is shown.
    const outcome = await page.goto(`${admin.url}/ui`).then(
      (r) => String(r?.status()),
      (e: Error) => e.message,
    );
    expect(outcome).toMatch(/401|ERR_INVALID_AUTH_CREDENTIALS/);
    expect((await page.request.get(`${admin.url}/ui`)).status()).toBe(401);
    expect((await page.request.get(`${admin.url}/metrics`)).status()).toBe(401);
    await page.close();
  });

  it('shows the queues and a failed job’s reason with them (screenshot saved)', async () => {
    const context = await browser.newContext({
      httpCredentials: { username: 'admin', password: 'dashboard-pass' },
      viewport: { width: 1280, height: 900 },
    });
    // Every request the page makes, and any Content-Security-Policy complaint (the CSP must not break the UI).
    const requested: string[] = [];
    const cspErrors: string[] = [];
    context.on('request', (request) => requested.push(request.url()));
    const page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' && m.text().includes('Content Security Policy')) cspErrors.push(m.text());
    });
    expect((await page.goto(`${admin.url}/ui`))?.status()).toBe(200);
    await page.getByText('outbound').first().waitFor({ timeout: 15_000 });
    await expect(page.getByText('inbound').first().isVisible()).resolves.toBe(true);
    await page.goto(`${admin.url}/ui/queue/outbound?status=failed`);
    await page.getByText('45015 response out of time limit', { exact: false }).first().waitFor({ timeout: 15_000 });
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: new URL('dashboard-failed-job.png', ARTIFACTS).pathname, fullPage: true });
    await context.close();
    // Nothing leaves loopback: no Google Fonts (offline sites would log errors), no other host.
    expect(requested.length).toBeGreaterThan(3);
    expect(requested.filter((url) => !/^(https?:\/\/(127\.0\.0\.1|localhost)[:/]|data:|blob:)/.test(url))).toEqual([]);
    expect(cspErrors).toEqual([]);
  });
});
