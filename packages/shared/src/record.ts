/** Whether `value` is an object and not an array: its properties can be read by name, each as unknown. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
