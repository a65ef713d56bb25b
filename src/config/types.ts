/**
 * oslo.config value types (oslo_config/types.py), as pure functions from the
 * raw string to the typed value. Each throws TypeValueError with oslo's reason;
 * the caller adds file/section/option. Reasons never echo string values of
 * secret options: the caller decides what to show.
 */

export class TypeValueError extends Error {}

export type OptionValue = string | number | boolean | string[] | Record<string, string> | null;

/** oslo Boolean: true/1/on/yes and false/0/off/no, case-insensitive, no trimming. */
export function parseBool(s: string): boolean {
  const l = s.toLowerCase();
  if (l === 'true' || l === '1' || l === 'on' || l === 'yes') return true;
  if (l === 'false' || l === '0' || l === 'off' || l === 'no') return false;
  throw new TypeValueError(`invalid boolean ${JSON.stringify(s)}`);
}

// Python int(): optional sign, decimal digits with single underscores between them, surrounding whitespace.
const PY_INT = /^[+-]?\d+(?:_\d+)*$/u;
// Python float(): decimal/exponent forms (underscores allowed between digits), inf/infinity/nan.
const PY_FLOAT = /^[+-]?(?:(?:\d+(?:_\d+)*)?\.?\d+(?:_\d+)*(?:[eE][+-]?\d+(?:_\d+)*)?|\d+(?:_\d+)*\.(?:[eE][+-]?\d+(?:_\d+)*)?|inf(?:inity)?|nan)$/iu;

export interface NumberBounds {
  min?: number | undefined;
  max?: number | undefined;
  choices?: readonly number[] | undefined;
}

function checkBounds(n: number, b: NumberBounds): number {
  if (b.choices !== undefined && b.choices.length > 0) {
    if (!b.choices.includes(n)) throw new TypeValueError(`valid values are ${b.choices.join(', ')}, but found ${n}`);
    return n;
  }
  if (b.min !== undefined && n < b.min) throw new TypeValueError(`should be greater than or equal to ${b.min}`);
  if (b.max !== undefined && n > b.max) throw new TypeValueError(`should be less than or equal to ${b.max}`);
  return n;
}

/** oslo Integer (and Port with 0..65535): blank → null (oslo returns None). */
export function parseInteger(s: string, bounds: NumberBounds = {}): number | null {
  const t = s.trim();
  if (t === '') return null;
  if (!PY_INT.test(t)) throw new TypeValueError(`invalid integer ${JSON.stringify(s)}`);
  const n = Number(t.replaceAll('_', ''));
  if (!Number.isSafeInteger(n)) throw new TypeValueError(`integer out of range ${JSON.stringify(s)}`);
  return checkBounds(n, bounds);
}

/** oslo Float: blank → null. */
export function parseFloat_(s: string, bounds: NumberBounds = {}): number | null {
  const t = s.trim();
  if (t === '') return null;
  if (!PY_FLOAT.test(t)) throw new TypeValueError(`invalid float ${JSON.stringify(s)}`);
  const l = t.replaceAll('_', '').toLowerCase();
  const sign = l.startsWith('-') ? -1 : 1;
  const body = l.replace(/^[+-]/u, '');
  const n = body.startsWith('inf') ? sign * Infinity : body === 'nan' ? NaN : Number(l);
  return checkBounds(n, bounds);
}

/** oslo List of String: strip, drop one trailing comma run, split on ",", strip items. */
export function parseList(s: string): string[] {
  const t = s.trim().replace(/,+$/u, '');
  if (t === '') return [];
  // String items never fail, so oslo's re-joining loop never triggers.
  return t.split(',').map((v) => v.trim());
}

/** oslo Dict of String: "k1:v1,k2:v2"; a piece without ":" is joined to the next one as oslo does. */
export function parseDict(s: string): Record<string, string> {
  const t = s.trim();
  const result: Record<string, string> = {};
  if (t === '') return result;
  const pairs = t.split(',');
  while (pairs.length > 0) {
    let pair = pairs.shift() ?? '';
    let at = pair.indexOf(':');
    while (at < 0) {
      const next = pairs.shift();
      if (next === undefined) throw new TypeValueError('value should be NAME:VALUE pairs separated by ","');
      pair += ',' + next;
      at = pair.indexOf(':');
    }
    const key = pair.slice(0, at).trim();
    const value = pair.slice(at + 1).trim();
    if (key === '') throw new TypeValueError('key name should not be empty');
    if (Object.hasOwn(result, key)) throw new TypeValueError(`duplicate key ${key}`);
    result[key] = value;
  }
  return result;
}

/** oslo String with optional choices (case-sensitive, as Trove registers them). */
export function parseString(s: string, choices?: readonly (string | null)[]): string {
  if (choices !== undefined && choices.length > 0 && !choices.includes(s)) {
    throw new TypeValueError(`valid values are ${choices.filter((c) => c !== null).join(', ')}, but found ${JSON.stringify(s)}`);
  }
  return s;
}
