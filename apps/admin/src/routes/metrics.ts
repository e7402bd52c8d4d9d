import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';

export interface MetricsRoutesOptions {
  registry: Registry;
  /** Brings counters kept in Redis up to date before a scrape; its failure leaves them as they were. */
  refresh?: (() => Promise<void>) | undefined;
}

/** `GET /metrics`: the admin's gauges and the hosting process's metrics, for Prometheus. */
export const metricsRoutes: FastifyPluginAsync<MetricsRoutesOptions> = async (app, { registry, refresh }) => {
  app.get('/metrics', async (req, reply) => {
    await refresh?.().catch((error: unknown) => req.log.warn({ err: String(error) }, 'admin: metrics refresh failed'));
    return reply.type(registry.contentType).send(await registry.metrics());
  });
};
