import { Counter, Histogram, type Registry } from 'prom-client';

/** The WeCom pull's metrics: pulls, pages, messages pulled, and how long a page takes. */
export class PullMetrics {
  /** Pull notices handled, by account and outcome (pulled, joined, lost, failed). */
  readonly pulls: Counter<'app_id' | 'result'>;
  readonly pages: Counter<'app_id'>;
  readonly messages: Counter<'app_id'>;
  /** Items skipped as malformed or naming no customer. */
  readonly skipped: Counter<'app_id'>;
  /** Messages over a minute old a catch-up pull found (from a cursor): no notice pulled them in time. */
  readonly catchUpMessages: Counter<'app_id'>;
  readonly pageSeconds: Histogram<'app_id'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.pulls = new Counter({
      name: 'wxkf_wecom_pulls_total',
      help: 'WeCom pull notices handled by this process, by account (CorpID) and result: pulled (this job pulled), joined (another job was pulling: it went round once more), lost (the lock was taken over), failed',
      labelNames: ['app_id', 'result'],
      registers,
    });
    this.pages = new Counter({
      name: 'wxkf_wecom_pull_pages_total',
      help: 'kf/sync_msg pages pulled, by account',
      labelNames: ['app_id'],
      registers,
    });
    this.messages = new Counter({
      name: 'wxkf_wecom_pulled_messages_total',
      help: 'Messages and events pulled through kf/sync_msg and stored as inbound jobs, by account',
      labelNames: ['app_id'],
      registers,
    });
    this.skipped = new Counter({
      name: 'wxkf_wecom_pull_skipped_total',
      help: 'Pulled items skipped because they were malformed or named no customer, by account',
      labelNames: ['app_id'],
      registers,
    });
    this.catchUpMessages = new Counter({
      name: 'wxkf_wecom_catchup_messages_total',
      help: 'Messages and events over a minute old that a catch-up pull (WECOM_CATCHUP_SECONDS) found from a cursor: no callback had them pulled in time, by account',
      labelNames: ['app_id'],
      registers,
    });
    this.pageSeconds = new Histogram({
      name: 'wxkf_wecom_pull_seconds',
      help: 'How long one kf/sync_msg page took, by account',
      labelNames: ['app_id'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
  }
}
