import { createBullBoard } from '@bull-board/api';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyPluginAsync } from 'fastify';
import { clientErrorsFirst } from '../plugins/error-handler.js';
import type { Queues } from '../queues.js';
import { ShardedQueueAdapter } from '../sharded-queue-adapter.js';

// bull-board routes that would put data of the dashboard user's choosing into a job: the worker sends what
// a job holds, so these stay closed. Retry, promote, clean and remove stay open.
const BOARD_DENIED = new Set(['post /api/queues/:queueName/add', 'patch /api/queues/:queueName/:jobId/update-data']);
// The dashboard loads everything from this listener: no fonts or scripts from another host (offline sites).
const BOARD_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";
const EXTERNAL_LINK = /<link\b[^>]*\bhref=["']?(?:https?:)?\/\/[^>]*>\s*/gi;

/**
 * bull-board at `/ui`: `inbound` and `outbound`, each over every shard (ShardedQueueAdapter), job data read-only;
 * `/` redirects to it.
 */
export const dashboardRoutes: FastifyPluginAsync<{ queues: Queues }> = async (app, { queues }) => {
  const board = new FastifyAdapter();
  createBullBoard({
    queues: [new ShardedQueueAdapter(queues.inbounds), new ShardedQueueAdapter(queues.outbounds)],
    serverAdapter: board,
    options: {
      uiConfig: { boardTitle: 'wx-kf queues', hideDocsLink: true },
      handlerHooks: {
        before: ({ method, route }) =>
          BOARD_DENIED.has(`${method} ${route}`)
            ? { allow: false, status: 403, message: 'the dashboard cannot add jobs or change job data' }
            : undefined,
      },
    },
  });
  board.setBasePath('/ui');
  // bull-board answers its own failures in its own shape; the gate's refusals are answered as everywhere else.
  app.addHook('onRoute', (route) => {
    route.errorHandler = clientErrorsFirst;
  });
  // bull-board's page links Google Fonts; drop any link to another host (the fonts fall back to the system's).
  app.addHook('onSend', async (_req, reply, payload) => {
    if (!String(reply.getHeader('content-type') ?? '').startsWith('text/html')) return payload;
    reply.header('content-security-policy', BOARD_CSP);
    return typeof payload === 'string' ? payload.replace(EXTERNAL_LINK, '') : payload;
  });
  await app.register(board.registerPlugin(), { prefix: '/ui' });
  app.get('/', async (_req, reply) => reply.redirect('/ui'));
};
