import { NotifyClient, TokenManager, WeChatClient, WeChatHttp } from '@wx-kf/shared/api';
import type { AccountConfig, Config } from '@wx-kf/shared/config';
import type { Conversations } from '@wx-kf/shared/conversation';
import type { Logger } from '@wx-kf/shared/log';
import {
  dataProblemOf,
  foreignField,
  KIND_ACCOUNT,
  NOTIFY_JOB,
  type NotificationBody,
  type NotificationJobData,
  type NotificationKind,
  usesGrant,
} from '@wx-kf/shared/notify';
import { OUTBOUND_JOB_OPTIONS } from '@wx-kf/shared/queue';
import type { Queues } from './queues.js';
import { DataRefusal, NoGrant, Refusal } from './refusal.js';
import { TemplateCatalogue } from './templates.js';

/** A notification as the API takes it: WeChat's body for its kind, and whether it may go without a grant. */
export interface NotificationRequest {
  appId: string;
  kind: NotificationKind;
  body: NotificationBody;
  ignoreGrant: boolean;
  source: NotificationJobData['source'];
}

/** The template types `gettemplate` reports: 3 is long-term (one accept allows many sends, no count to keep). */
const LONG_TERM = 3;

/**
 * The admin listener's notifications (POST /api/v1/notifications and the send API's fallback): each request
 * checked (the kind for the account, the `data` against the template's keys and each key's limit), the user's
 * grant taken for the job, and the job queued on the user's outbound queue, where a worker sends it
 * (apps/worker/src/processors/notify.ts). The WeChat client is made on first use.
 */
export class Notifications {
  private api: { http: WeChatHttp; tokens: TokenManager; notify: NotifyClient } | undefined;
  private readonly templates: TemplateCatalogue;

  constructor(
    private readonly config: Config,
    private readonly queues: Queues,
    private readonly conversations: Conversations,
    private readonly logger: Logger,
  ) {
    this.templates = new TemplateCatalogue((appId) => this.client.notify.templates(appId));
  }

  private get client() {
    if (!this.api) {
      const http = new WeChatHttp({ baseUrl: this.config.api.base, proxy: this.config.api.proxy });
      const tokens = new TokenManager({
        redis: this.queues.connection,
        http,
        accounts: this.config.accounts,
        source: this.config.api.tokenSource,
        logger: this.logger,
      });
      const notify = new NotifyClient(http, new WeChatClient(http, tokens, this.queues.connection));
      this.api = { http, tokens, notify };
    }
    return this.api;
  }

  /** The kind's body for this account: 400 `kind` for another kind of account or a field of another kind. */
  body(account: AccountConfig, kind: NotificationKind, body: NotificationBody): NotificationBody {
    if (account.type === 'wecom-kf') {
      throw new Refusal(400, 'kind', 'a WeCom customer-service account (wecom-kf) has no notifications');
    }
    if (KIND_ACCOUNT[kind] !== account.type) {
      const kinds = account.type === 'miniprogram' ? '"subscribe"' : '"template" or "bizsend"';
      throw new Refusal(400, 'kind', `a ${account.type} sends ${kinds} notifications, not "${kind}"`);
    }
    const foreign = foreignField(kind, body);
    if (foreign) throw new Refusal(400, foreign, `${foreign}: not a field of a ${kind} body`);
    return body;
  }

  /**
   * Refuses (422 `data`, naming the key and the limit) what WeChat would refuse with 47003: a subscribe template
   * the account does not have, a key it lacks or one missing, a value over its kind's limit. Resolves whether
   * the template is long-term. When WeChat cannot list the templates, only the limits are checked.
   */
  async check(appId: string, kind: NotificationKind, body: NotificationBody): Promise<{ longTerm: boolean }> {
    let keys: string[] | undefined;
    let longTerm = false;
    // Template messages have their own template list; their values are checked by their keys' kinds only.
    if (kind !== 'template') {
      try {
        const template = await this.templates.template(appId, body.template_id);
        if (!template) throw new DataRefusal(`template_id: the account has no subscribe template ${body.template_id}`);
        keys = template.keys;
        longTerm = template.type === LONG_TERM;
      } catch (error) {
        if (error instanceof Refusal) throw error;
        this.logger.warn(
          { appId, err: String(error) },
          'notifications: templates not listed; data checked by kind only',
        );
      }
    }
    const problem = dataProblemOf(body.data, keys);
    if (problem) throw new DataRefusal(problem);
    return { longTerm };
  }

  /**
   * Takes the user's grant for job `jobId` (409 `no_grant` without one, unless `ignoreGrant`; a long-term
   * template needs none) and queues the job; a grant taken for a job that could not be queued is given back.
   */
  async queue(request: NotificationRequest, jobId: string, options: { windowClosed?: boolean } = {}): Promise<string> {
    const { appId, kind, body } = request;
    const touser = body.touser;
    const grants = this.conversations.grants;
    const taken = usesGrant(kind) ? await grants.take(appId, touser, body.template_id, jobId) : 'none';
    if (usesGrant(kind) && taken === 'none' && !request.ignoreGrant) {
      throw new NoGrant(body.template_id, options.windowClosed);
    }
    const data: NotificationJobData = {
      appId,
      touser,
      msgKey: jobId,
      kind,
      notification: body,
      source: request.source,
      receivedAt: Date.now(),
      ...(request.ignoreGrant ? { ignoreGrant: true } : {}),
    };
    try {
      await this.queues.outboundFor(appId, touser).add(NOTIFY_JOB, data, { ...OUTBOUND_JOB_OPTIONS, jobId });
    } catch (error) {
      if (taken === 'taken') await grants.giveBack(appId, touser, body.template_id, jobId).catch(() => undefined);
      throw error;
    }
    this.logger.info({ appId, jobId, kind, template: body.template_id, source: request.source }, 'notification queued');
    return jobId;
  }

  async close(): Promise<void> {
    if (!this.api) return;
    this.api.tokens.close();
    await this.api.http.close();
  }
}
