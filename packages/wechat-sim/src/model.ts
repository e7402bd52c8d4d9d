import type { FastifyInstance } from 'fastify';
import { ok } from './answers.js';
import type { FaultPlan } from './faults.js';
import { parseJsonBody } from './json-body.js';
import { authorised, chatCompletion } from './model-completion.js';
import { MODEL_PATH, type ModelState } from './model-state.js';

export {
  MODEL_PATH,
  type ModelCall,
  type ModelOptions,
  type ModelSettings,
  ModelState,
} from './model-state.js';

const isSetting = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/**
 * An OpenAI-compatible model on the simulator's port: `POST /v1/chat/completions` (plain and streaming) and
 * `GET /v1/models`, with deterministic answers (model-answer.ts), faults from the simulator's fault plan (path
 * `/v1/chat/completions`), and `/__sim/model` to read its calls and change its speed.
 */
export function modelRoutes(app: FastifyInstance, model: ModelState, faults: FaultPlan, now: () => number): void {
  // A hung or slow call must not keep the simulator from closing.
  app.addHook('preClose', async () => {
    for (const res of model.open) res.destroy();
  });

  app.get('/v1/models', async (req, reply) => {
    if (!authorised(model, req, reply)) return reply;
    return { object: 'list', data: [{ id: model.settings.name, object: 'model', created: 0, owned_by: 'wx-kf' }] };
  });

  app.post(MODEL_PATH, (req, reply) => chatCompletion(req, reply, model, faults, now));

  // Inspection and control (not OpenAI's API).
  app.get('/__sim/model', async () => ({
    settings: { ...model.settings, key: model.settings.key ? '(set)' : undefined },
    calls: model.calls,
    inFlight: model.inFlight,
    maxInFlight: model.maxInFlight,
  }));
  app.post('/__sim/model', async (req, reply) => {
    const body = parseJsonBody(req.body);
    if (!body || ['latencyMs', 'tokensPerSecond'].some((k) => k in body && !isSetting(body[k]))) {
      return reply.code(400).send({ error: 'latencyMs and tokensPerSecond are numbers ≥ 0' });
    }
    const { latencyMs, tokensPerSecond, key } = body;
    if (key !== undefined && key !== null && typeof key !== 'string') {
      return reply.code(400).send({ error: 'key is a string, or null for none' });
    }
    model.settings = {
      ...model.settings,
      ...(isSetting(latencyMs) ? { latencyMs } : {}),
      ...(isSetting(tokensPerSecond) ? { tokensPerSecond } : {}),
      ...(key !== undefined ? { key: key ?? undefined } : {}),
    };
    return ok;
  });
}
