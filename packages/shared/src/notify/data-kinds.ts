// The limits WeChat puts on a subscribe message's `data` values, by the kind each key's name starts with
// (docs/wechat-protocol.md §14.3). Pure functions: the admin API checks a request with them before anything is
// queued (422), and the simulator refuses what WeChat would (47003).

/** One kind's rule: the most characters (code points) a value may have, and what it may hold. */
interface KindRule {
  max: number;
  /** The characters allowed, when WeChat restricts them. */
  only?: RegExp;
  /** How the limit reads in a refusal. */
  says: string;
}

const HAN = /^\p{Script=Han}+$/u;

/** The kinds with a limit WeChat states (amount, date and time have formats WeChat checks itself). */
export const DATA_KINDS: Readonly<Record<string, KindRule>> = {
  thing: { max: 20, says: 'at most 20 characters' },
  number: { max: 32, only: /^[0-9]+(\.[0-9]+)?$/, says: 'at most 32 digits, a decimal point allowed' },
  letter: { max: 32, only: /^[A-Za-z]+$/, says: 'at most 32 letters' },
  symbol: { max: 5, says: 'at most 5 symbols' },
  character_string: { max: 32, says: 'at most 32 digits, letters or symbols' },
  phrase: { max: 5, only: HAN, says: 'at most 5 Chinese characters, nothing else' },
  phone_number: { max: 17, says: 'at most 17 digits or symbols' },
  car_number: { max: 8, says: 'at most 8 characters' },
};

/** `name`: at most 10 Chinese characters, or (with no Chinese character) at most 20 letters or symbols. */
const NAME_SAYS = 'at most 10 Chinese characters, or 20 letters';

/** A key's kind: its name without the trailing number (`thing1` → `thing`, `character_string19`). */
export function dataKind(key: string): string {
  return key.replace(/\d+$/, '');
}

/** Why `value` breaks the limit of `key`'s kind, naming both; undefined when it fits (or the kind has none). */
export function dataProblem(key: string, value: string): string | undefined {
  const kind = dataKind(key);
  const length = [...value].length;
  if (length === 0) return `data.${key}: a value is required`;
  if (kind === 'name') {
    const max = /\p{Script=Han}/u.test(value) ? 10 : 20;
    return length > max ? `data.${key}: a name is ${NAME_SAYS} (${length} given)` : undefined;
  }
  const rule = DATA_KINDS[kind];
  if (!rule) return undefined;
  if (length > rule.max) return `data.${key}: a ${kind} value is ${rule.says} (${length} given)`;
  if (rule.only && !rule.only.test(value)) return `data.${key}: a ${kind} value is ${rule.says}`;
  return undefined;
}

/** The `data` keys a template's content names (`{{thing1.DATA}}`; WeChat's OA pages also print `{ {x.DATA} }`). */
export function templateKeys(content: string): string[] {
  return [...content.matchAll(/\{\s*\{\s*([A-Za-z_][\w]*)\.DATA\s*\}\s*\}/g)].map((m) => m[1] ?? '');
}

/**
 * The first problem of a notification's `data`: against the template's keys when known (a key it does not have, or
 * one of its keys missing), then each value against its kind's limit. Undefined when WeChat should take it.
 */
export function dataProblemOf(data: Readonly<Record<string, { value: string | number }>>, keys?: readonly string[]) {
  if (keys) {
    const extra = Object.keys(data).find((key) => !keys.includes(key));
    if (extra !== undefined) return `data.${extra}: the template has no such key (its keys: ${keys.join(', ')})`;
    const missing = keys.find((key) => !(key in data));
    if (missing !== undefined) return `data.${missing}: the template needs this key`;
  }
  for (const [key, { value }] of Object.entries(data)) {
    const problem = dataProblem(key, String(value));
    if (problem) return problem;
  }
  return undefined;
}
