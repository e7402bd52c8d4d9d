// The OpenTelemetry side of tracing/index.ts, imported only when tracing is requested: the Node SDK (exporter,
// sampler, batching and resource from the standard OTEL_* variables), BullMQ's telemetry hook, and the undici
// instrumentation for HTTP calls that have no span of their own (a model API, say).
import {
  type Attributes,
  type Context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { Telemetry, Span as TelemetrySpan } from 'bullmq';
import { BullMQOtel } from 'bullmq-otel';
import { failureOf, safeName } from './failure.js';
import type { SpanAttributes, SpanKindName, TracingBackend, TracingStarted } from './index.js';

const KINDS: Record<SpanKindName, SpanKind> = {
  internal: SpanKind.INTERNAL,
  server: SpanKind.SERVER,
  client: SpanKind.CLIENT,
};

/** How long a stop waits for the last spans to reach the collector. */
const SHUTDOWN_MS = 5000;

function fail(span: Span, error: unknown): void {
  const failure = failureOf(error);
  span.setAttributes(failure.attributes as Attributes);
  if (failure.failed) span.setStatus({ code: SpanStatusCode.ERROR, message: String(failure.attributes['error.type']) });
}

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  typeof (value as { then?: unknown } | null)?.then === 'function';

// BullMQ's spans that say nothing about a message: the worker's polling, lock renewals and stalled-job checks
// (each a trace of its own every few seconds), and closing. They are not recorded.
const BACKGROUND = new Set(['getNextJob', 'extendLocks', 'startStalledCheckTimer', 'moveStalledJobsToWait', 'close']);
// Event attributes BullMQ copies from a job (its return value, its error message): left out.
const JOB_COPIES = ['bullmq.job.result', 'bullmq.job.failed.reason'];

const NOOP_SPAN: TelemetrySpan = {
  setSpanOnContext: (ctx) => ctx,
  setAttribute: () => undefined,
  setAttributes: () => undefined,
  addEvent: () => undefined,
  recordException: () => undefined,
  end: () => undefined,
};

/** A BullMQ span whose events and exceptions keep no copy of what a job held. */
function quietSpan(span: TelemetrySpan): TelemetrySpan {
  return {
    setSpanOnContext: (ctx) => span.setSpanOnContext(ctx),
    setAttribute: (key, value) => span.setAttribute(key, value),
    setAttributes: (attributes) => span.setAttributes(attributes),
    addEvent: (name, attributes) => {
      const kept = { ...attributes };
      for (const key of JOB_COPIES) delete kept[key];
      span.addEvent(name, kept);
    },
    recordException: (exception) => {
      span.addEvent('exception', { 'exception.type': safeName(typeof exception === 'string' ? '' : exception.name) });
    },
    end: () => span.end(),
  };
}

/**
 * bullmq-otel, minus the background spans: `add <queue>.<job>` (producer) stores the context in the job, and
 * `process <queue>` (consumer) continues it, on every attempt. A job stored without a context starts a trace of
 * its own, not a child of whatever job the worker ran before.
 */
function queueTelemetry(version: string): Telemetry<Context> {
  const otel = new BullMQOtel({ tracerName: 'bullmq', version });
  return {
    contextManager: otel.contextManager,
    tracer: {
      startSpan(name, options, ctx) {
        if (BACKGROUND.has(name.split(' ', 1)[0] ?? '')) return NOOP_SPAN;
        const parent = ctx ?? (options?.kind === SpanKind.CONSUMER ? ROOT_CONTEXT : undefined);
        return quietSpan(otel.tracer.startSpan(name, options, parent));
      },
    },
  };
}

/** The exporter as the SDK reads it from the environment, for the start-up log line. */
function exporterOf(env: NodeJS.ProcessEnv): Omit<TracingStarted, 'service'> {
  const exporter = env.OTEL_TRACES_EXPORTER?.trim() || 'otlp';
  if (!exporter.split(',').includes('otlp')) return { exporter };
  const protocol =
    env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL?.trim() || env.OTEL_EXPORTER_OTLP_PROTOCOL?.trim() || 'http/protobuf';
  const url = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT || 'http://localhost:4318';
  let endpoint: string;
  try {
    endpoint = new URL(url).origin;
  } catch {
    endpoint = 'not a URL';
  }
  return { exporter: `otlp (${protocol})`, endpoint };
}

/** The Node SDK for this process, started: traces only (metrics stay Prometheus, logs stay pino on stdout). */
function startSdk(serviceName: string | undefined, ownSpans: (string | undefined)[]): NodeSDK {
  const skip = new Set(ownSpans.flatMap((url) => (url ? [new URL(url).origin] : [])));
  const sdk = new NodeSDK({
    ...(serviceName ? { serviceName } : {}),
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [
      new UndiciInstrumentation({
        requireParentforSpans: true,
        ignoreRequestHook: (request) => skip.has(request.origin),
        // The query string may hold a credential (WeChat's access_token is one): it never reaches a span.
        startSpanHook: (request) => ({
          'url.full': `${request.origin}${request.path.split('?')[0]}`,
          'url.query': undefined,
        }),
      }),
    ],
  });
  sdk.start();
  return sdk;
}

/** Runs `fn` in an active span that ends when `fn` returns, throws, resolves or rejects. */
function runInSpan<T>(span: Span, fn: () => T, onSuccess: SpanAttributes | undefined): T {
  const ok = <V>(value: V): V => {
    if (onSuccess) span.setAttributes(onSuccess as Attributes);
    span.end();
    return value;
  };
  const ko = (error: unknown): never => {
    fail(span, error);
    span.end();
    throw error;
  };
  let result: T;
  try {
    result = fn();
  } catch (error) {
    return ko(error);
  }
  return (isThenable(result) ? Promise.resolve(result).then(ok, ko) : ok(result)) as T;
}

/** Records how a job's attempt ended on its `process` span. */
async function outcome<T>(fn: () => Promise<T>): Promise<T> {
  const span = trace.getActiveSpan();
  try {
    const result = await fn();
    const { action, sent } = (result ?? {}) as { action?: unknown; sent?: unknown };
    if (typeof action === 'string') span?.setAttribute('wxkf.job.action', action);
    if (typeof sent === 'number') span?.setAttribute('wxkf.job.sent', sent);
    return result;
  } catch (error) {
    if (span) fail(span, error);
    throw error;
  }
}

/** Starts OpenTelemetry for this process and returns the tracing backend (tracing/index.ts) over it. */
export function startOpenTelemetry(
  service: string,
  ownSpans: (string | undefined)[],
): { backend: TracingBackend; info: TracingStarted } {
  const env = process.env;
  // OTEL_SERVICE_NAME (or a service.name in OTEL_RESOURCE_ATTRIBUTES) wins over wx-kf's names.
  const named = env.OTEL_SERVICE_NAME || /(^|,)\s*service\.name=/.test(env.OTEL_RESOURCE_ATTRIBUTES ?? '');
  const serviceName = service === 'wx-kf' ? service : `wx-kf-${service}`;
  const sdk = startSdk(named ? undefined : serviceName, ownSpans);
  const version = env.npm_package_version ?? '0';
  const tracer = trace.getTracer('wx-kf', version);
  const backend: TracingBackend = {
    span: (name, kind, attributes, fn, onSuccess) =>
      tracer.startActiveSpan(name, { kind: KINDS[kind], attributes: attributes as Attributes }, (span) =>
        runInSpan(span, fn, onSuccess),
      ),
    annotate: (attributes) => trace.getActiveSpan()?.setAttributes(attributes as Attributes),
    ids() {
      const ids = trace.getActiveSpan()?.spanContext();
      if (!ids || !(ids.traceFlags & TraceFlags.SAMPLED)) return undefined;
      return { trace_id: ids.traceId, span_id: ids.spanId };
    },
    outcome,
    pastSpan(name, metadata, start, end, attributes) {
      let parent = ROOT_CONTEXT;
      try {
        if (metadata) parent = propagation.extract(ROOT_CONTEXT, JSON.parse(metadata));
      } catch {
        // Not a context BullMQ stored: the span starts a trace of its own.
      }
      tracer.startSpan(name, { startTime: start, attributes: attributes as Attributes }, parent).end(end);
    },
    telemetry: queueTelemetry(version),
    shutdown: () =>
      Promise.race([sdk.shutdown(), new Promise<void>((resolve) => setTimeout(resolve, SHUTDOWN_MS).unref())]),
  };
  const name = named ? (env.OTEL_SERVICE_NAME ?? 'from OTEL_RESOURCE_ATTRIBUTES') : serviceName;
  return { backend, info: { service: name, ...exporterOf(env) } };
}
