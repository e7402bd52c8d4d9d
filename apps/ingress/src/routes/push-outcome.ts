import { errorMessage, type Logger } from '@wx-kf/shared/log';
import { annotate } from '@wx-kf/shared/tracing';
import type { PushFormat } from '@wx-kf/shared/wechat';
import type { FastifyReply } from 'fastify';
import type { IngressMetrics } from '../metrics.js';
import { bounded, refusal } from '../refusal.js';

/** A push's one log line, filled in as the push is read. */
export interface PushLine {
  appId: string;
  /** Until the push is opened, what the query string claims (`encrypted` or `plain`); `wecom` for WeCom's callback. */
  mode: string;
  format?: PushFormat;
  msgType?: string;
  msgKey?: string;
  /** The agent holding the user's open handoff (true when none is named). */
  handoff?: string | true;
}

/** How a push ended: its result, HTTP status, log level and what else its line says. */
export type PushFinish = (result: string, status: number, level: 'info' | 'warn' | 'error', extra?: object) => void;

/** Ends a push: counts it by result, times its answer and writes its one log line (`line`, as it is by then). */
export function pushOutcome(
  { metrics, logger }: { metrics: IngressMetrics; logger: Logger },
  line: PushLine,
  started: number,
): PushFinish {
  return (result, status, level, extra = {}) => {
    const seconds = (performance.now() - started) / 1000;
    metrics.pushes.inc({ app_id: line.appId, mode: line.mode, result });
    metrics.ackSeconds.observe({ result }, seconds);
    logger[level]({ ...line, outcome: result, status, ms: Math.round(seconds * 10_000) / 10, ...extra }, 'push');
    annotate({ 'wxkf.app_id': line.appId, 'wxkf.outcome': result, 'wxkf.msg_key': line.msgKey });
  };
}

/** Answers a refused push with its status and `{ error, message }`, counted and logged by its kind. */
export function refusePush(error: unknown, reply: FastifyReply, finish: PushFinish, countUnavailable: () => void) {
  const r = refusal(error);
  if (r.status === 503) {
    countUnavailable();
    finish('unavailable', 503, 'error', { reason: bounded(errorMessage(error)) });
  } else if (r.status === 500) finish('error', 500, 'error', { err: error });
  else finish('rejected', r.status, 'warn', { reason: r.message });
  return reply.code(r.status).send({ error: r.error, message: r.message });
}
