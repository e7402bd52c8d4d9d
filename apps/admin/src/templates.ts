import type { SubscribeTemplate } from '@wx-kf/shared/api';

/** How long an account's template list is believed: templates change by hand in WeChat's console, rarely. */
export const TEMPLATE_CACHE_MS = 5 * 60_000;
/** An unknown template id asks WeChat again only when the list is older than this (a template just added). */
const REFRESH_UNKNOWN_MS = 30_000;

/**
 * Each account's subscribe templates (`wxaapi/newtmpl/gettemplate`), cached per process: the notifications
 * endpoint checks a request's `data` against its template's keys without asking WeChat each time. Concurrent
 * lookups of one account share one request.
 */
export class TemplateCatalogue {
  private readonly lists = new Map<string, { at: number; templates: Promise<Map<string, SubscribeTemplate>> }>();

  constructor(
    private readonly fetch: (appId: string) => Promise<SubscribeTemplate[]>,
    private readonly now: () => number = Date.now,
  ) {}

  private load(appId: string): Promise<Map<string, SubscribeTemplate>> {
    const templates = this.fetch(appId).then((list) => new Map(list.map((t) => [t.id, t])));
    // A failed fetch is not cached: the next lookup asks again.
    templates.catch(() => this.lists.delete(appId));
    this.lists.set(appId, { at: this.now(), templates });
    return templates;
  }

  /** The account's template `id`, or undefined when WeChat does not list it. */
  async template(appId: string, id: string): Promise<SubscribeTemplate | undefined> {
    const cached = this.lists.get(appId);
    const age = cached ? this.now() - cached.at : Number.POSITIVE_INFINITY;
    if (!cached || age >= TEMPLATE_CACHE_MS) return (await this.load(appId)).get(id);
    const found = (await cached.templates).get(id);
    if (found || age < REFRESH_UNKNOWN_MS) return found;
    return (await this.load(appId)).get(id);
  }
}
