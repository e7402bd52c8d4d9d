import { isRecord } from '@wx-kf/shared/record';

export { isRecord };

/** A request body parsed as a JSON object; undefined for anything else (the simulator answers WeChat's errcode). */
export function parseJsonBody(body: unknown): Record<string, unknown> | undefined {
  if (typeof body !== 'string') return undefined;
  try {
    const parsed: unknown = JSON.parse(body);
    return isRecord(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** A request's JSON object body, or an empty one (every field then reads as absent). */
export const jsonFields = (req: { body: unknown }): Record<string, unknown> => parseJsonBody(req.body) ?? {};

/** A field that should be a string: itself, or '' when absent or of another type. */
export const stringField = (value: unknown): string => (typeof value === 'string' ? value : '');

/** A parameter of the query string (or of the path, from `req.params`) when it is one string. */
export function stringParam(parameters: unknown, name: string): string | undefined {
  const value = isRecord(parameters) ? parameters[name] : undefined;
  return typeof value === 'string' ? value : undefined;
}
