import type { Config } from '@wx-kf/shared/config';
import type { Worker } from 'bullmq';
import Fastify, { type FastifyInstance, LogController } from 'fastify';
import type { Registry } from 'prom-client';

/** The /healthz and /metrics listener, and the address its socket is really bound to. */
export async function listenForMetrics(
  listen: NonNullable<Config['worker']['metrics']>,
  workers: Worker[],
  registry: Registry,
): Promise<{ server: FastifyInstance; url: string }> {
  const server = Fastify({ logController: new LogController({ disableRequestLogging: true }) });
  server.get('/healthz', async () => ({ status: workers.every((w) => w.isRunning()) ? 'ok' : 'stopping' }));
  server.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
  await server.listen(listen);
  // The address the socket is really bound to (not the one asked for): the log line must not mislead.
  const bound = server.server.address();
  if (bound === null || typeof bound === 'string') return { server, url: String(bound) };
  return { server, url: `http://${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}` };
}
