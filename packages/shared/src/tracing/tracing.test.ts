import { DelayedError, type Job } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { TokenUnavailableError, TransportError, WeChatApiError } from '../api/errors.js';
import { ConfigError, readConfig } from '../config/index.js';
import { failureOf } from './failure.js';
import {
  annotate,
  annotateUser,
  inSpan,
  logMixin,
  queueTelemetry,
  serverSpans,
  traceJob,
  tracingOn,
  tracingRequested,
  userHash,
} from './index.js';

// These run without tracing started (nothing here starts it): the helpers must be plain calls. The spans
// themselves are checked across real processes in test/tracing.test.ts.

describe('tracingRequested', () => {
  it('is on with an OTLP endpoint or an exporter, off otherwise', () => {
    expect(tracingRequested({})).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: '' })).toBe(false); // compose passes it empty
    expect(tracingRequested({ OTEL_SERVICE_NAME: 'x', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://jaeger:4318' })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' })).toBe(true);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: 'console' })).toBe(true);
  });

  it('is off with OTEL_TRACES_EXPORTER=none or OTEL_SDK_DISABLED=true, whatever else is set', () => {
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://jaeger:4318' };
    expect(tracingRequested({ ...endpoint, OTEL_TRACES_EXPORTER: 'none' })).toBe(false);
    expect(tracingRequested({ ...endpoint, OTEL_SDK_DISABLED: 'TRUE' })).toBe(false);
    expect(tracingRequested({ ...endpoint, OTEL_SDK_DISABLED: 'false' })).toBe(true);
    // As the SDK reads it: `none` beside another exporter means the default one.
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: 'none,console' })).toBe(true);
  });
});

describe('without tracing, every helper is a plain call', () => {
  it('inSpan returns what its function returns or throws, sync or async', async () => {
    expect(tracingOn()).toBe(false);
    expect(inSpan('x', { a: 1 }, () => 42)).toBe(42);
    await expect(inSpan('x', {}, async () => 'ok')).resolves.toBe('ok');
    expect(() =>
      inSpan('x', {}, () => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    annotate({ a: 1 });
    annotateUser('wx1', 'o_user');
  });

  it('adds nothing: no BullMQ telemetry, no log mixin, no route hook, the processor itself', () => {
    expect(queueTelemetry()).toBeUndefined();
    expect(logMixin()).toBeUndefined();
    expect(serverSpans()).toBeUndefined();
    const processor = async (_job: Job<unknown>) => 'done';
    expect(traceJob('inbound', processor)).toBe(processor);
  });
});

describe('userHash', () => {
  it('is the first 16 hex digits of sha256("<appId>:<openid>"), never the OpenID', () => {
    const hash = userHash('wx0123456789abcdef', 'oXYZ0123456789abcdefghijklmn');
    // printf '%s:%s' wx0123456789abcdef oXYZ0123456789abcdefghijklmn | sha256sum | cut -c1-16
    expect(hash).toBe('9e8e6593454eff8b');
    expect(userHash('wx0123456789abcdef', 'oXYZ0123456789abcdefghijklmo')).not.toBe(hash);
    expect(userHash('wx0123456789abcdeg', 'oXYZ0123456789abcdefghijklmn')).not.toBe(hash);
  });
});

describe('failureOf: what a span keeps of an error', () => {
  it('keeps the kind and the errcode, never the message', () => {
    expect(failureOf(new WeChatApiError(45015, 'response out of time limit', '/x'))).toEqual({
      failed: true,
      attributes: { 'error.type': 'wechat_errcode', 'wechat.errcode': 45015, 'wxkf.errcode.action': 'fail' },
    });
    expect(failureOf(new TransportError('/x: ETIMEDOUT', '/x', 'timeout')).attributes).toEqual({
      'error.type': 'transport_timeout',
    });
    expect(failureOf(new TokenUnavailableError('wx1', 40164, 'invalid ip', 1000)).attributes).toEqual({
      'error.type': 'token_unavailable',
      'wechat.errcode': 40164,
    });
    const leaky = new Error('handler failed for oUser0123456789abcdefghijklm: "hello"');
    expect(failureOf(leaky)).toEqual({ failed: true, attributes: { 'error.type': 'Error' } });
    expect(failureOf(Object.assign(new Error(), { name: 'has spaces: "and quotes"' })).attributes).toEqual({
      'error.type': 'Error',
    });
    expect(failureOf('a string')).toEqual({ failed: true, attributes: { 'error.type': 'Error' } });
  });

  it('takes a DelayedError (a job waiting its turn) for no failure', () => {
    expect(failureOf(new DelayedError())).toEqual({ failed: false, attributes: { 'wxkf.delayed': true } });
  });
});

describe('the OTEL_* variables wx-kf relies on are checked at start', () => {
  const base = { WECHAT_APP_ID: 'wx0123456789abcdef', WECHAT_APP_SECRET: 'secret', WECHAT_TOKEN: 'token123' };
  const problems = (env: NodeJS.ProcessEnv) => {
    try {
      readConfig({ ...base, ...env });
      return [];
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      return error.problems;
    }
  };

  it('accepts the documented values, and empty ones (unset)', () => {
    expect(
      problems({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://jaeger:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://collector.example/v1/traces',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
        OTEL_TRACES_EXPORTER: 'otlp,console',
        OTEL_SERVICE_NAME: 'wx-kf-worker-eu',
        OTEL_SDK_DISABLED: 'false',
      }),
    ).toEqual([]);
    expect(problems({ OTEL_EXPORTER_OTLP_ENDPOINT: '' })).toEqual([]);
  });

  it('refuses a bad endpoint, protocol or exporter with one line each, not quoting the value', () => {
    const lines = problems({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'collector.internal:4318',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http',
      OTEL_TRACES_EXPORTER: 'jaeger',
    });
    expect(lines).toEqual([
      expect.stringMatching(/^OTEL_EXPORTER_OTLP_ENDPOINT: must be an http:\/\/ or https:\/\/ URL/),
      expect.stringMatching(/^OTEL_EXPORTER_OTLP_PROTOCOL: /),
      'OTEL_TRACES_EXPORTER: must be otlp, console, zipkin or none',
    ]);
    expect(lines.join('\n')).not.toContain('collector.internal');
  });
});
