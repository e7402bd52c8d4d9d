import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accountEnv } from '@wx-kf/shared/config';
import { createRedis, Keyspace } from '@wx-kf/shared/redis';
import { userHash } from '@wx-kf/shared/tracing';
import { freePort, isolatedRedisUrl, OtlpReceiver, type ReceivedSpan, ServiceProcess } from '@wx-kf/testkit';
import { buildPush, deliverPush, type Push, Simulator, sampleMessage } from '@wx-kf/wechat-sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// One push → one trace across the ingress and the workers (and the admin's send API), exported over OTLP/HTTP
// (JSON) to a receiver in this test; no span holds what must not leave the service. Then: with tracing unset,
// no OpenTelemetry module is even loaded.

const account = {
  appId: 'wxtracingtest0001',
  appSecret: 'tracing-app-secret-7c41d9',
  token: 'tracingToken7c41',
  aesKey: 'TracingTestEncodingAESKey'.padEnd(43, '7'),
};
const ADMIN = { password: 'tracing-admin-pass-5e2', apiKey: 'tracing-api-key-5e2a9b7c31d8' };
/** A user as WeChat names them: 28 characters. */
const openid = () => `o${randomBytes(21).toString('base64url').slice(0, 27)}`;
const dir = mkdtempSync(join(tmpdir(), 'wx-kf-tracing-'));
const rules = join(dir, 'rules.json');
writeFileSync(rules, JSON.stringify({ fallback: [{ msgtype: 'text', text: { content: 'got {{Content}}' } }] }));

const sim = new Simulator({ accounts: [{ appId: account.appId, appSecret: account.appSecret, type: 'miniprogram' }] });
let receiver: OtlpReceiver;
let redisUrl: string;
let pushUrl: string;
let adminUrl: string;
const running: ServiceProcess[] = [];
const users: string[] = [];
const contents: string[] = [];
const pushes: Push[] = [];

const start = (name: 'ingress' | 'worker' | 'admin', env: NodeJS.ProcessEnv) => {
  const p = ServiceProcess.start(name, env);
  running.push(p);
  return p;
};
let ingress: ServiceProcess;
let workers: ServiceProcess[];

beforeAll(async () => {
  receiver = await OtlpReceiver.start();
  await sim.listen();
  redisUrl = await isolatedRedisUrl();
  const [port, adminPort] = [await freePort(), await freePort()];
  pushUrl = `http://127.0.0.1:${port}/wechat/${account.appId}`;
  adminUrl = `http://127.0.0.1:${adminPort}`;
  const env = {
    ...accountEnv(account),
    REDIS_URL: redisUrl,
    WECHAT_API_BASE: sim.url,
    REPLY_RULES_FILE: rules,
    HOST: '127.0.0.1',
    PORT: String(port),
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '100',
  };
  ingress = start('ingress', env);
  workers = [start('worker', env), start('worker', env)];
  const admin = start('admin', {
    ...env,
    ADMIN_PORT: String(adminPort),
    ADMIN_PASSWORD: ADMIN.password,
    ADMIN_API_KEY: ADMIN.apiKey,
  });
  await Promise.all([
    ingress.waitFor('ingress listening'),
    ...workers.map((w) => w.waitFor('worker started')),
    admin.waitFor('admin listening'),
  ]);
}, 60_000);

afterAll(async () => {
  await Promise.all(running.map((p) => p.stop('SIGKILL')));
  await Promise.all([receiver?.close(), sim.close()]);
});

/** Pushes one text message from a new user (safe mode, JSON) and resolves its message key once it is answered. */
async function pushOne(): Promise<string> {
  const user = openid();
  const content = `trace me ${randomBytes(6).toString('hex')}`;
  users.push(user);
  contents.push(content);
  const message = sampleMessage('text', { fromUser: user, content });
  const push = buildPush({ account, message, mode: 'safe', format: 'json' });
  pushes.push(push);
  const [delivery] = await deliverPush(pushUrl, push);
  expect(delivery?.status).toBe(200);
  await until(() => sim.state.messages.some((m) => m.touser === user));
  return `${account.appId}-m${push.message.MsgId}`;
}

async function until(check: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The trace whose root is the span `name` with attribute `key` = `value`, once `complete` holds for it. */
async function traceOf(
  name: string,
  key: string,
  value: unknown,
  complete: (spans: ReceivedSpan[]) => boolean,
): Promise<{ root: ReceivedSpan; spans: ReceivedSpan[] }> {
  const find = () => receiver.spans.find((s) => s.name === name && s.attributes[key] === value);
  await receiver.waitFor(() => {
    const root = find();
    return Boolean(root && complete(receiver.trace(root.traceId)));
  });
  const root = find() as ReceivedSpan;
  return { root, spans: receiver.trace(root.traceId) };
}

/** Every span's parent is in the trace, except the root's: one tree, nothing detached. */
function expectOneTree(spans: ReceivedSpan[], root: ReceivedSpan): void {
  const ids = new Set(spans.map((s) => s.spanId));
  const orphans = spans.filter((s) => s !== root && !ids.has(s.parentSpanId ?? ''));
  expect(orphans.map((s) => `${s.service}: ${s.name}`)).toEqual([]);
  expect(root.parentSpanId).toBeUndefined();
}

/** The names of `span`'s ancestors, nearest first. */
function ancestry(spans: ReceivedSpan[], span: ReceivedSpan): string[] {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const names: string[] = [];
  for (let p = byId.get(span.parentSpanId ?? ''); p; p = byId.get(p.parentSpanId ?? '')) names.push(p.name);
  return names;
}

const named = (spans: ReceivedSpan[], name: string) => spans.filter((s) => s.name === name);

describe('tracing across processes (OTLP/HTTP to an in-test receiver)', () => {
  it('one push is one trace: the ingress request, the queue, the worker and the send with its errcode', async () => {
    const msgKey = await pushOne();
    const { root, spans } = await traceOf(
      'POST /wechat/:appId',
      'wxkf.msg_key',
      msgKey,
      // The job's own span ends after its send's: exported in a later batch, it is waited for too.
      (t) =>
        named(t, 'send').length > 0 &&
        named(t, 'POST /cgi-bin/message/custom/send').length > 0 &&
        named(t, 'process inbound').length > 0,
    );
    expect(root).toMatchObject({ service: 'wx-kf-ingress', kind: 2 });
    expect(root.attributes).toMatchObject({
      'http.route': '/wechat/:appId',
      'http.response.status_code': 200,
      'wxkf.outcome': 'stored',
      'wxkf.user': userHash(account.appId, users.at(-1) as string),
    });
    for (const name of ['verify', 'store', 'add inbound.push']) {
      expect(named(spans, name).map((s) => s.service)).toEqual(['wx-kf-ingress']);
    }
    const [send] = named(spans, 'send');
    expect(send).toMatchObject({ service: 'wx-kf-worker', attributes: { 'wechat.errcode': 0 } });
    expect(ancestry(spans, send as ReceivedSpan)).toEqual([
      'process inbound',
      'add inbound.push',
      'store',
      'POST /wechat/:appId',
    ]);
    const [call] = named(spans, 'POST /cgi-bin/message/custom/send');
    expect(call?.parentSpanId).toBe(send?.spanId);
    expect(call?.attributes).toMatchObject({ 'wechat.errcode': 0, 'http.response.status_code': 200 });
    // The job's time in the queue, and the first token fetch of the deployment, in the same trace.
    expect(named(spans, 'wait inbound')).toHaveLength(1);
    expect(named(spans, 'turn')).toHaveLength(1);
    expect(named(spans, 'plan')[0]?.attributes).toMatchObject({ 'wxkf.plan.source': 'rules' });
    const [refresh] = named(spans, 'access_token refresh');
    expect(refresh?.attributes).toMatchObject({ 'wxkf.token.fetched': true, 'wxkf.app_id': account.appId });
    expect(named(spans, 'POST /cgi-bin/stable_token')[0]?.parentSpanId).toBe(refresh?.spanId);
    expectOneTree(spans, root);

    // A log search for the trace finds the push's line in the ingress and the reply's in the worker.
    // (Log lines reach stdout in batches, at least every 100 ms.)
    const logged = (processes: ServiceProcess[], msg: string) =>
      processes.some((p) => p.output.some((l) => l.includes(`"trace_id":"${root.traceId}"`) && l.includes(msg)));
    await until(() => logged([ingress], '"msg":"push"'));
    await until(() => logged(workers, '"msg":"replies sent"'));
  });

  it('a retried send: both attempts in the same trace, each with its errcode', async () => {
    sim.faults.add({ path: '/cgi-bin/message/custom/send', script: [{ errcode: -1, errmsg: 'system busy' }] });
    const msgKey = await pushOne();
    const { root, spans } = await traceOf('POST /wechat/:appId', 'wxkf.msg_key', msgKey, (t) => {
      const sends = named(t, 'send');
      return sends.length === 2 && named(t, 'POST /cgi-bin/message/custom/send').length === 2;
    });
    const sends = named(spans, 'send').sort((a, b) => a.startMs - b.startMs);
    expect(sends.map((s) => s.attributes['wechat.errcode'])).toEqual([-1, 0]);
    expect(sends[0]?.attributes).toMatchObject({ 'error.type': 'wechat_errcode' });
    expect(sends[0]?.status?.code).toBe(2);
    // The first in the inbound job; the retry in the outbound job it handed the reply to, in either worker.
    expect(ancestry(spans, sends[0] as ReceivedSpan)[0]).toBe('process inbound');
    expect(ancestry(spans, sends[1] as ReceivedSpan).slice(0, 3)).toEqual([
      'process outbound',
      'add outbound.send',
      'process inbound',
    ]);
    expect(named(spans, 'process inbound')[0]?.attributes).toMatchObject({ 'wxkf.job.action': 'requeued' });
    expectOneTree(spans, root);
  });

  it("a send API call is one trace from the admin's request to the worker's send", async () => {
    const user = openid();
    users.push(user);
    const content = `sent by the API ${randomBytes(6).toString('hex')}`;
    contents.push(content);
    const res = await fetch(`${adminUrl}/api/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        appId: account.appId,
        touser: user,
        messages: [{ msgtype: 'text', text: { content } }],
        ignoreWindow: true,
      }),
    });
    expect(res.status).toBe(202);
    const { root, spans } = await traceOf('POST /api/v1/messages', 'wxkf.user', userHash(account.appId, user), (t) =>
      named(t, 'send').some((s) => s.attributes['wechat.errcode'] === 0),
    );
    expect(root).toMatchObject({ service: 'wx-kf-admin', attributes: { 'http.response.status_code': 202 } });
    const [send] = named(spans, 'send');
    expect(send?.service).toBe('wx-kf-worker');
    expect(ancestry(spans, send as ReceivedSpan)).toEqual(['process outbound', 'add outbound.send', root.name]);
    expectOneTree(spans, root);
  });

  it('no exported span, event or resource holds a secret, a token, message content or a raw OpenID', async () => {
    const redis = createRedis(redisUrl, 'client');
    const stored = JSON.parse((await redis.get(Keyspace.SINGLE.token(account.appId))) ?? '{}') as { token?: string };
    redis.disconnect();
    expect(stored.token).toBeTruthy();
    const secrets: Record<string, string[]> = {
      'app secret': [account.appSecret],
      'push token': [account.token],
      'AES key': [account.aesKey],
      access_token: [stored.token as string],
      'admin password and API key': [ADMIN.password, ADMIN.apiKey],
      'message content': contents,
      OpenID: users,
      signature: pushes.flatMap((p) => [p.query.signature, p.query.msg_signature].filter((s): s is string => !!s)),
      'encrypted body': pushes.map((p) => (JSON.parse(p.body) as { Encrypt: string }).Encrypt.slice(0, 40)),
    };
    const exported = receiver.bodies.join('\n');
    expect(receiver.spans.length).toBeGreaterThan(20);
    for (const [what, values] of Object.entries(secrets)) {
      expect(values.length, what).toBeGreaterThan(0);
      for (const value of values) expect(exported.includes(value), `${what} in an exported span`).toBe(false);
    }
    // Users appear hashed (sha256 of appId:openid, 16 hex digits), so a trace can still be found for one.
    for (const user of users) expect(exported).toContain(userHash(account.appId, user));
  });

  it("every trace starts at a request: BullMQ's polling, lock renewals and stalled-job checks are not recorded", () => {
    const roots = receiver.spans.filter((s) => !s.parentSpanId);
    expect(roots.length).toBeGreaterThanOrEqual(3);
    expect(roots.filter((s) => s.kind !== 2).map((s) => `${s.service}: ${s.name}`)).toEqual([]);
    expect(receiver.spans.filter((s) => /^(getNextJob|extendLocks|moveStalledJobsToWait) /.test(s.name))).toEqual([]);
  });
});

describe('tracing unset', () => {
  /**
   * The OpenTelemetry packages a process loaded, from Node's module loader debug output, and which module first
   * asked for each (prom-client asks for @opentelemetry/api, the API alone, for its metrics' exemplars).
   */
  const otelPackages = (p: ServiceProcess) => {
    const loaded = new Map<string, string>();
    for (const line of p.output) {
      const at = line.match(/node_modules\/(@opentelemetry\/[\w-]+|bullmq-otel)\//)?.[1];
      if (at && !loaded.has(at)) loaded.set(at, '');
      const request = line.match(/REQUEST (@opentelemetry\/[\w-]+|bullmq-otel)\S* parent: (\S+)/);
      if (request?.[1] && !loaded.get(request[1])) loaded.set(request[1], request[2] ?? '');
    }
    return loaded;
  };

  it('no OpenTelemetry SDK is loaded, nor bullmq-otel: only the API prom-client has always loaded', async () => {
    const url = await isolatedRedisUrl();
    const port = await freePort();
    // NODE_DEBUG=module: Node logs every CommonJS module it loads, with its path (the OpenTelemetry packages and
    // bullmq-otel are CommonJS). Not `esm` too: that multiplies the lines by 8 (about 220 000 per process on Node
    // 24), and Node drops debug lines a busy reader's full pipe cannot take.
    const env = {
      ...accountEnv(account),
      REDIS_URL: url,
      WECHAT_API_BASE: sim.url,
      REPLY_RULES_FILE: rules,
      HOST: '127.0.0.1',
      PORT: String(port),
      NODE_DEBUG: 'module',
    };
    const [off, worker] = [start('ingress', env), start('worker', env)];
    // The control: the same ingress with tracing on loads the SDK, and the debug output shows it.
    const on = start('ingress', { ...env, PORT: String(await freePort()), OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url });
    await Promise.all([
      off.waitFor('ingress listening'),
      worker.waitFor('worker started'),
      on.waitFor('ingress listening'),
    ]);
    const user = openid();
    const message = sampleMessage('text', { fromUser: user });
    const push = buildPush({ account, message, mode: 'safe', format: 'json' });
    expect((await deliverPush(`http://127.0.0.1:${port}/wechat/${account.appId}`, push))[0]?.status).toBe(200);
    await until(() => sim.state.messages.some((m) => m.touser === user));
    await worker.waitFor('replies sent');
    // Their module logs come on stderr, read behind their stdout: the processes are stopped and their pipes read to
    // the end before they are looked at.
    await Promise.all([off, worker, on].map((p) => p.stop('SIGTERM')));
    for (const p of [off, worker]) {
      const packages = otelPackages(p);
      // Nothing but the API. Node 20 logs prom-client's require of it in both processes; Node 24 does not always
      // in the worker (the control below shows the SDK's loads are seen on every version).
      expect(
        [...packages.keys()].filter((name) => name !== '@opentelemetry/api'),
        p.name,
      ).toEqual([]);
      if (p === off || packages.has('@opentelemetry/api')) {
        expect(packages.get('@opentelemetry/api'), p.name).toMatch(/\/node_modules\/prom-client\//);
      }
      expect(p.output.some((l) => l.includes('"trace_id"'))).toBe(false);
    }
    expect([...otelPackages(on).keys()]).toEqual(
      expect.arrayContaining(['@opentelemetry/sdk-node', '@opentelemetry/api', 'bullmq-otel']),
    );
  }, 60_000);
});
