import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { bounded, describeError, Refusal, type RefusalAnswer } from '../refusal.js';

/** Fastify's own refusals (no Authorization header, a body too large or of another type…), named by status. */
const CLIENT_ERRORS: Readonly<Record<number, string>> = {
  401: 'unauthorized',
  404: 'not_found',
  413: 'too_large',
  415: 'content_type',
};

const answer = (status: number, error: string, message: string): RefusalAnswer => ({
  status,
  body: { error, message: bounded(message) },
  headers: {},
});

/** A 4xx: the request's fault (a route, a gate or Fastify refused it), not ours. */
const isClientError = (error: FastifyError): error is FastifyError & { statusCode: number } =>
  error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500;

function answerOf(error: FastifyError, req: FastifyRequest): RefusalAnswer {
  const known = describeError(error);
  if (known) return known;
  if (hasZodFastifySchemaValidationErrors(error)) {
    // A request that fails its schema: 400 naming the field first (`touser`, `messages`, `idempotency-key`).
    const issue = error.validation[0];
    const field = issue?.instancePath.split('/')[1] || 'request';
    return answer(400, field, `${field}: ${issue?.message ?? 'invalid'}`);
  }
  if (isClientError(error)) {
    return answer(error.statusCode, CLIENT_ERRORS[error.statusCode] ?? 'request', error.message);
  }
  // Ours: logged once here, answered without its text (it may hold anything).
  req.log.error({ err: error, route: req.routeOptions.url }, 'admin: request failed');
  return answer(500, 'internal', 'internal error');
}

/**
 * The admin listener's one error handler: every refusal a route, a gate or Fastify throws is answered as
 * `{ error, message }` (the message at most 200 characters) with its status and headers; WeChat's refusals keep
 * their `errcode` and `errmsg`; anything else is a 500 `internal`, logged once.
 */
export function adminErrorHandler(error: FastifyError, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const { status, body, headers } = answerOf(error, req);
  return reply.code(status).headers(headers).send(body);
}

/**
 * For routes that answer their own failures (bull-board): client errors (the gate's 401 and 429, a bad body) are
 * answered by adminErrorHandler; anything else goes on to the routes' own handler.
 */
export function clientErrorsFirst(error: FastifyError, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  return isClientError(error) ? adminErrorHandler(error, req, reply) : reply.send(error);
}

/** An unknown path: 404 `not_found`. */
export async function notFound(): Promise<never> {
  throw new Refusal(404, 'not_found', 'no such route');
}
