import { handoffCounter } from '@wx-kf/shared/handoff';
import { Counter, Histogram, type Registry } from 'prom-client';

/** The ingress's Prometheus metrics, registered on the given registry. */
export class IngressMetrics {
  readonly pushes: Counter<'app_id' | 'mode' | 'result'>;
  readonly ackSeconds: Histogram<'result'>;
  readonly enqueueFailures: Counter<'app_id'>;
  readonly refused: Counter<'status'>;
  readonly handoffs: Counter<'app_id' | 'change' | 'reason'>;

  constructor(registry: Registry) {
    this.pushes = new Counter({
      name: 'wxkf_pushes_total',
      help: 'Pushes received, by account, mode (plain, compat, safe; encrypted when refused before decryption; wecom for WeCom callbacks) and result (stored, duplicate, transferred, ignored (a WeCom event that is no pull notice), rejected, unavailable, error)',
      labelNames: ['app_id', 'mode', 'result'],
      registers: [registry],
    });
    this.ackSeconds = new Histogram({
      name: 'wxkf_push_ack_seconds',
      help: 'Time from receiving a push to answering it',
      labelNames: ['result'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    });
    this.enqueueFailures = new Counter({
      name: 'wxkf_enqueue_failures_total',
      help: 'Pushes that could not be stored in Redis (answered 503)',
      labelNames: ['app_id'],
      registers: [registry],
    });
    this.refused = new Counter({
      name: 'wxkf_requests_refused_total',
      help: 'Requests refused before a push was read, by status: 404 unknown account, 413 body too large, 400 malformed query, 503 load shedding (event loop overloaded); refusals of a read push count in wxkf_pushes_total',
      labelNames: ['status'],
      registers: [registry],
    });
    this.handoffs = handoffCounter([registry]);
  }
}
