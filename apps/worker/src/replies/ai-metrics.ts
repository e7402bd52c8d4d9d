import { Counter, Histogram, type Registry } from 'prom-client';

/** The AI reply source's Prometheus metrics (in the worker's registry; docs/operating.md lists them). */
export class AiMetrics {
  readonly modelSeconds: Histogram<'app_id'>;
  readonly slotWaitSeconds: Histogram<'app_id'>;
  readonly tokens: Counter<'app_id' | 'direction'>;
  readonly failures: Counter<'app_id' | 'kind'>;
  readonly answers: Counter<'app_id' | 'outcome'>;
  readonly split: Counter<'app_id'>;
  readonly clipped: Counter<'app_id'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.modelSeconds = new Histogram({
      name: 'wxkf_ai_model_seconds',
      help: 'Model calls from the request to the last token (or the failure), retries included, by account',
      labelNames: ['app_id'],
      buckets: [0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120],
      registers,
    });
    this.slotWaitSeconds = new Histogram({
      name: 'wxkf_ai_slot_wait_seconds',
      help: 'Time a model call waited for one of its account’s AI_MAX_IN_FLIGHT slots, by account',
      labelNames: ['app_id'],
      buckets: [0.01, 0.1, 0.5, 1, 2, 5, 10, 20],
      registers,
    });
    this.tokens = new Counter({
      name: 'wxkf_ai_tokens_total',
      help: 'Model tokens by account and direction (in: the prompt, out: the answer), as the endpoint reported them',
      labelNames: ['app_id', 'direction'],
      registers,
    });
    this.failures = new Counter({
      name: 'wxkf_ai_failures_total',
      help: 'Model answers not sent, by account and kind (timeout, connection, rate_limit, server, auth, bad_request, empty, user_rate, budget, risky, check_error)',
      labelNames: ['app_id', 'kind'],
      registers,
    });
    this.answers = new Counter({
      name: 'wxkf_ai_answers_total',
      help: 'Messages answered by an ai rule, by account and outcome (answer, handover, on_error, no_send)',
      labelNames: ['app_id', 'outcome'],
      registers,
    });
    this.split = new Counter({
      name: 'wxkf_ai_answers_split_total',
      help: 'Model answers sent as more than one message (split at paragraph or sentence boundaries), by account',
      labelNames: ['app_id'],
      registers,
    });
    this.clipped = new Counter({
      name: 'wxkf_ai_answers_clipped_total',
      help: 'Model answers with a part not sent because the user’s window had no send left for it, by account',
      labelNames: ['app_id'],
      registers,
    });
  }
}
