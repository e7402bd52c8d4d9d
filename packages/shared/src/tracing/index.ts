// Traces with OpenTelemetry, when the standard OTEL_* variables ask for them (docs/operating.md, "Tracing").
// This module loads no OpenTelemetry code: the SDK, the API and bullmq-otel are imported (by otel.ts) only
// once startTracing finds tracing requested. Until then, and for good when it is not, every helper here is a
// plain call: `inSpan` runs its function, `annotate` does nothing, `traceJob` returns the processor itself.
import { createHash } from 'node:crypto';
import type { Job, Telemetry } from 'bullmq';
import type { StoredJobData } from '../queue/index.js';

/** What a span attribute may hold here: never a secret, a token, message content or a raw OpenID. */
export type SpanAttributes = Record<string, string | number | boolean | undefined>;
export type SpanKindName = 'internal' | 'server' | 'client';

/** The OpenTelemetry side (otel.ts), present only while tracing is on. */
export interface TracingBackend {
  span<T>(name: string, kind: SpanKindName, attributes: SpanAttributes, fn: () => T, onSuccess?: SpanAttributes): T;
  annotate(attributes: SpanAttributes): void;
  /** The active span's ids, for log lines. */
  ids(): LogIds | undefined;
  /** Runs `fn`, recording how it ended on the active span (a job's `process` span, made by BullMQ). */
  outcome<T>(fn: () => Promise<T>): Promise<T>;
  /** A span already over (a job's wait in its queue), under the context a producer stored in the job. */
  pastSpan(name: string, metadata: string | undefined, start: number, end: number, attributes: SpanAttributes): void;
  /** BullMQ's telemetry hook (bullmq-otel): queue spans, and the context carried in each job. */
  telemetry: Telemetry;
  shutdown(): Promise<void>;
}

export interface LogIds {
  trace_id: string;
  span_id: string;
}

export interface TracingStarted {
  service: string;
  exporter: string;
  /** The OTLP endpoint's origin (no path, no credentials), when the exporter is OTLP. */
  endpoint?: string | undefined;
}

let backend: TracingBackend | undefined;

/**
 * Whether the environment asks for traces: OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
 * OTEL_TRACES_EXPORTER set, unless OTEL_TRACES_EXPORTER is `none` or OTEL_SDK_DISABLED is true (as the SDK reads
 * them: `none` with other exporters means the default one).
 */
export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if (/^true$/i.test(env.OTEL_SDK_DISABLED?.trim() ?? '')) return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '').split(',').flatMap((e) => e.trim().toLowerCase() || []);
  if (exporters.length === 1 && exporters[0] === 'none') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || exporters.length > 0);
}

export interface StartTracingOptions {
  env?: NodeJS.ProcessEnv;
  /**
   * Origins whose HTTP calls get no generic client span: the WeChat API (and its proxy), whose calls have
   * spans of their own with the errcode (api/http.ts).
   */
  ownSpans?: (string | undefined)[];
}

/**
 * Starts the OpenTelemetry SDK for this process when the environment asks for traces (tracingRequested);
 * resolves what it exports to, or undefined (nothing loaded). `service` names the process: `wx-kf-<service>`
 * unless OTEL_SERVICE_NAME says otherwise. Call it before any queue or worker is made.
 */
export async function startTracing(
  service: string,
  options: StartTracingOptions = {},
): Promise<TracingStarted | undefined> {
  if (backend || !tracingRequested(options.env)) return undefined;
  const { startOpenTelemetry } = await import('./otel.js');
  const started = startOpenTelemetry(service, options.ownSpans ?? []);
  backend = started.backend;
  return started.info;
}

/** Exports what is still buffered and stops tracing (at the end of a graceful stop). */
export async function stopTracing(): Promise<void> {
  const running = backend;
  backend = undefined;
  await running?.shutdown();
}

/** True while spans are recorded. */
export function tracingOn(): boolean {
  return backend !== undefined;
}

/**
 * Runs `fn` in a span `name` (with `attributes`; `onSuccess` added when it returns or resolves). A thrown error
 * or a rejection is recorded by kind only (errors.ts), never by its message. Without tracing: `fn()`.
 */
export function inSpan<T>(
  name: string,
  attributes: SpanAttributes,
  fn: () => T,
  options: { kind?: SpanKindName; onSuccess?: SpanAttributes } = {},
): T {
  return backend ? backend.span(name, options.kind ?? 'internal', attributes, fn, options.onSuccess) : fn();
}

/** Adds attributes to the active span (the request's, the job's, …); nothing without tracing. */
export function annotate(attributes: SpanAttributes): void {
  backend?.annotate(attributes);
}

/**
 * A user as spans name them: the first 16 hex digits of SHA-256 over `<appId>:<openid>`, never the OpenID
 * (compute it for a user you look for: `printf '%s:%s' "$APPID" "$OPENID" | sha256sum | cut -c1-16`).
 */
export function userHash(appId: string, openid: string): string {
  return createHash('sha256').update(`${appId}:${openid}`).digest('hex').slice(0, 16);
}

/** Adds the hashed user to the active span (hashed only while tracing is on). */
export function annotateUser(appId: string, openid: unknown): void {
  if (backend && typeof openid === 'string') backend.annotate({ 'wxkf.user': userHash(appId, openid) });
}

/** BullMQ's telemetry option for a Queue or Worker: bullmq-otel while tracing is on, else undefined. */
export function queueTelemetry(): Telemetry | undefined {
  return backend?.telemetry;
}

/**
 * A pino mixin adding `trace_id` and `span_id` to lines logged in a span; undefined while tracing is off. (A new
 * object each line: pino merges the line's fields into it.)
 */
export function logMixin(): (() => object) | undefined {
  const active = backend;
  return active ? () => active.ids() ?? {} : undefined;
}

/**
 * A BullMQ processor that, while tracing is on, marks its job's span (BullMQ's `process <queue>`) with the
 * account, the message key, the hashed user and the attempt (and how it ended), and records the job's time in
 * the queue before its first attempt as a span `wait <queue>`, from the add (a planned delay included) to the
 * start. Without tracing: the processor itself.
 */
export function traceJob<D, R>(
  queue: string,
  processor: (job: Job<D>, token?: string) => Promise<R>,
): (job: Job<D>, token?: string) => Promise<R> {
  const active = backend;
  if (!active) return processor;
  return (job, token) => {
    const data = (job.data ?? {}) as StoredJobData;
    const appId = typeof data.appId === 'string' ? data.appId : undefined;
    const user = data.touser ?? data.message?.FromUserName;
    const ready = job.timestamp + (job.opts.delay ?? 0);
    const started = job.processedOn ?? Date.now();
    const attributes = {
      'wxkf.app_id': appId,
      'wxkf.msg_key': typeof data.msgKey === 'string' ? data.msgKey : undefined,
      'wxkf.user': appId && typeof user === 'string' ? userHash(appId, user) : undefined,
      'bullmq.job.attempts.started': job.attemptsStarted,
      'wxkf.queue.wait_ms': job.attemptsStarted <= 1 ? Math.max(0, started - ready) : undefined,
    };
    if (job.attemptsStarted <= 1) {
      const end = Math.max(started, job.timestamp); // the producer's clock may be ahead of this one
      active.pastSpan(`wait ${queue}`, job.opts.telemetry?.metadata, job.timestamp, end, {
        'bullmq.queue.name': queue,
        'bullmq.job.id': job.id,
        'bullmq.job.delay_ms': job.opts.delay || undefined,
      });
    }
    active.annotate(attributes);
    return active.outcome(() => processor(job, token));
  };
}

/** A Fastify route as an `onRoute` hook gets it (only what serverSpans uses). */
export interface RouteLike {
  method: string | string[];
  url?: string | undefined;
  handler(this: unknown, request: never, reply: { statusCode: number }): unknown;
}

/**
 * A Fastify `onRoute` hook that runs the handler of each route `traced` picks in a SERVER span `<METHOD> <route>`,
 * with the response's status code. The span names the route's template only: never the path (which may hold an
 * OpenID) nor the query (which holds signatures). Undefined while tracing is off: add it only when there is one.
 */
export function serverSpans(traced: (url: string) => boolean = () => true): ((route: RouteLike) => void) | undefined {
  const active = backend;
  if (!active) return undefined;
  return (route) => {
    const url = route.url ?? '';
    if (!traced(url)) return;
    const method = Array.isArray(route.method) ? route.method.join(',') : route.method;
    const attributes = { 'http.request.method': method, 'http.route': url };
    const handler = route.handler;
    route.handler = function (this: unknown, request: never, reply: { statusCode: number }) {
      return active.span(`${method} ${url}`, 'server', attributes, async () => {
        const result = await handler.call(this, request, reply);
        const status = reply.statusCode;
        active.annotate({
          'http.response.status_code': status,
          'error.type': status >= 500 ? String(status) : undefined,
        });
        return result;
      });
    };
  };
}
