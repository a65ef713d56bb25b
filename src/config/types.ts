/**
 * oslo.config value types (oslo_config/types.py), as pure functions from the
 * raw string to the typed value. Each throws TypeValueError with oslo's reason;
 * the caller adds file/section/option. Reasons never echo string values of
 * secret options: the caller decides what to show.
 */
import { isIP } from 'node:net';

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

/**
 * oslo List: strip, drop trailing commas, split on ","; each item goes through
 * `item` (default: String, trimmed). An item that fails is joined with the next
 * piece and retried, as oslo does; the first failure is reported.
 */
export function parseList(s: string, item: (v: string) => string = (v) => v): string[] {
  const t = s.trim().replace(/,+$/u, '');
  if (t === '') return [];
  const pieces = t.split(',');
  const result: string[] = [];
  while (pieces.length > 0) {
    let piece = pieces.shift() ?? '';
    let firstError: unknown = null;
    for (;;) {
      try {
        result.push(item(piece.trim()));
        break;
      } catch (err) {
        firstError ??= err;
        const next = pieces.shift();
        if (next === undefined) throw firstError;
        piece += ',' + next;
      }
    }
  }
  return result;
}

/**
 * oslo Range item ("N" or "N-M", integers without leading zeros), bounds
 * checked as oslo does. Returned as written; oslo turns it into an inclusive
 * Python range.
 */
export function parseRange(s: string, bounds: { min?: number | undefined; max?: number | undefined }): string {
  const m = /^(0|-?[1-9][0-9]*)(?:-(0|-?[1-9][0-9]*))?$/u.exec(s);
  if (m === null) throw new TypeValueError(`invalid range ${JSON.stringify(s)}`);
  const left = Number(m[1]);
  const right = m[2] === undefined ? left : Number(m[2]);
  const [low, high] = left < right ? [left, right] : [right, left];
  checkBounds(low, { min: bounds.min });
  checkBounds(high, { max: bounds.max });
  return s;
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

/** oslo String with optional choices; with ignoreCase the comparison ignores case but the value is kept. */
export function parseString(s: string, choices?: readonly (string | null)[], ignoreCase = false): string {
  if (choices === undefined || choices.length === 0) return s;
  const wanted = choices.filter((c): c is string => c !== null);
  const ok = ignoreCase ? wanted.some((c) => c.toLowerCase() === s.toLowerCase()) : wanted.includes(s);
  if (!ok) throw new TypeValueError(`valid values are ${wanted.join(', ')}, but found ${JSON.stringify(s)}`);
  return s;
}

/** oslo URI: needs a scheme and a host (rfc3986 validator with require_presence_of scheme, host). */
export function parseUri(s: string): string {
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/(?:[^@/?#\s]*@)?(\[[0-9A-Fa-f:.]+\]|[^:/?#\s[\]]+)(?::\d*)?(?:[/?#]\S*)?$/u.exec(s);
  if (m === null) throw new TypeValueError(`invalid URI ${JSON.stringify(s)} (needs scheme and host)`);
  return s;
}

/** oslo IPAddress (either version): a literal IPv4 or IPv6 address. */
export function parseIpAddress(s: string): string {
  if (s === '') throw new TypeValueError('IP address cannot be an empty string');
  if (isIP(s) === 0) throw new TypeValueError(`${JSON.stringify(s)} is not an IPv4 or IPv6 address`);
  return s;
}

/** oslo Hostname: dot-separated labels of letters, digits and inner hyphens, at most 253 chars; TLD not all-numeric. */
export function parseHostname(s: string): string {
  const name = s.endsWith('.') ? s.slice(0, -1) : s;
  const labels = name.split('.');
  const label = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/u;
  if (name.length === 0 || name.length > 253 || !labels.every((l) => label.test(l)) || /^\d+$/u.test(labels[labels.length - 1] ?? '')) {
    throw new TypeValueError(`${JSON.stringify(s)} is an invalid hostname`);
  }
  return s;
}
