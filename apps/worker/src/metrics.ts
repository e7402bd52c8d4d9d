import { handoffCounter } from '@wx-kf/shared/handoff';
import { Counter, type Registry } from 'prom-client';
import { AiMetrics } from './replies/ai-metrics.js';
import { PullMetrics } from './wecom-metrics.js';

/** The worker's Prometheus metrics. */
export class WorkerMetrics {
  readonly sends: Counter<'app_id' | 'errcode'>;
  readonly retries: Counter<'app_id' | 'reason'>;
  readonly tokenRequests: Counter<'app_id' | 'result'>;
  readonly jobs: Counter<'queue' | 'result'>;
  readonly windowRefusals: Counter<'app_id' | 'reason'>;
  readonly handoffs: Counter<'app_id' | 'change' | 'reason'>;
  /** Subscribe and template messages by account, template and outcome (processors/notify.ts). */
  readonly notifications: Counter<'app_id' | 'template' | 'outcome'>;
  /** The AI reply source's: model latency, tokens, failures, answers split and clipped. */
  readonly ai: AiMetrics;
  /** WeCom's pull: notices, pages, messages pulled, page latency (no series until a wecom-kf account pulls). */
  readonly wecom: PullMetrics;

  constructor(registry: Registry) {
    const registers = [registry];
    this.sends = new Counter({
      name: 'wxkf_sends_total',
      help: 'custom/send calls by account and errcode (0 = delivered; "transport" = timeout, 5xx or dropped)',
      labelNames: ['app_id', 'errcode'],
      registers,
    });
    this.retries = new Counter({
      name: 'wxkf_send_retries_total',
      help: 'Sends put off for a later attempt (retryable error, paused account, token cool-down), by reason',
      labelNames: ['app_id', 'reason'],
      registers,
    });
    this.tokenRequests = new Counter({
      name: 'wxkf_token_requests_total',
      help: 'access_token requests made to WeChat by this process, by result (ok, errcode, transport)',
      labelNames: ['app_id', 'result'],
      registers,
    });
    this.jobs = new Counter({
      name: 'wxkf_jobs_total',
      help: 'Jobs finished by this process, by queue and result',
      labelNames: ['queue', 'result'],
      registers,
    });
    this.windowRefusals = new Counter({
      name: 'wxkf_window_refusals_total',
      help: 'Sends refused by the window ledger before reaching WeChat, by account and reason (closed, exhausted)',
      labelNames: ['app_id', 'reason'],
      registers,
    });
    this.notifications = new Counter({
      name: 'wxkf_notifications_total',
      help: 'Notifications (subscribe, bizsend, template) by account, template and outcome: sent, no_grant, retry, transport, or the errcode of a refusal',
      labelNames: ['app_id', 'template', 'outcome'],
      registers,
    });
    // The ingress's metric when one process hosts both (pnpm start shares the registry): one name, one series.
    this.handoffs = handoffCounter([registry]);
    this.ai = new AiMetrics(registry);
    this.wecom = new PullMetrics(registry);
  }
}
