/**
 * The option table (oslo types, Trove 18 defaults) and the conversion of one
 * raw string into a typed value with a ConfigError naming file, section and
 * option. The table itself is generated into options.ts.
 */
import { ConfigError } from '../errors.ts';
import {
  parseBool,
  parseDict,
  parseHostname,
  parseIpAddress,
  parseUri,
  parseFloat_,
  parseInteger,
  parseList,
  parseRange,
  parseString,
  TypeValueError,
  type OptionValue,
} from './types.ts';

/** oslo types; uri/ip/hostname are oslo's URI, IPAddress and Hostname (validated strings); rangelist is a List of Range items ("N" or "N-M", kept as strings). */
export type OptionKind = 'str' | 'int' | 'float' | 'bool' | 'list' | 'dict' | 'port' | 'uri' | 'ip' | 'hostname' | 'rangelist';

export interface OptionSpec {
  kind: OptionKind;
  /** Trove/oslo default, before `$var` substitution. */
  default: OptionValue;
  min?: number;
  max?: number;
  choices?: readonly (string | number | null)[];
  /** String choices compared case-insensitively (the value itself is kept as written). */
  ignoreCase?: boolean;
  /** MultiStrOpt: values from every file are concatenated (oldest first). */
  multi?: boolean;
  /** Never shown in errors or logs. */
  secret?: boolean;
  /** oslo deprecated names as [group|null, name|null]; null means "same as the option's". */
  deprecated?: readonly (readonly [string | null, string | null])[];
}

export type OptionTable = Record<string, Record<string, OptionSpec>>;

/** Where a raw value came from, for error messages. */
export interface ValueOrigin {
  /** A file path, or `environment variable OS_…`, or `default`. */
  source: string;
  line?: number | undefined;
}

/** Convert one raw string for `[group] name`. Throws ConfigError naming source, section, option and reason. */
export function convertValue(group: string, name: string, spec: OptionSpec, raw: string, origin: ValueOrigin): OptionValue {
  try {
    switch (spec.kind) {
      case 'bool':
        return parseBool(raw);
      case 'int':
        return parseInteger(raw, numberBounds(spec));
      case 'port':
        return parseInteger(raw, { min: spec.min ?? 0, max: spec.max ?? 65535 });
      case 'float':
        return parseFloat_(raw, numberBounds(spec));
      case 'list':
        return parseList(raw);
      case 'dict':
        return parseDict(raw);
      case 'rangelist':
        return parseList(raw, (item) => parseRange(item, { min: spec.min, max: spec.max }));
      case 'str':
        return parseString(raw, spec.choices?.filter((c): c is string | null => typeof c !== 'number'), spec.ignoreCase ?? false);
      case 'uri':
        return parseUri(raw);
      case 'ip':
        return parseIpAddress(raw);
      case 'hostname':
        return parseHostname(raw);
    }
  } catch (err) {
    if (!(err instanceof TypeValueError)) throw err;
    const reason = spec.secret ? 'invalid value (secret, not shown)' : err.message;
    const at = origin.line !== undefined ? `${origin.source}:${origin.line}` : origin.source;
    throw new ConfigError(`${at}: [${group}] ${name}: ${reason}`, { file: origin.source, section: group, option: name });
  }
}

function numberBounds(spec: OptionSpec): { min?: number; max?: number; choices?: number[] } {
  const choices = spec.choices?.filter((c): c is number => typeof c === 'number');
  return {
    ...(spec.min !== undefined ? { min: spec.min } : {}),
    ...(spec.max !== undefined ? { max: spec.max } : {}),
    ...(choices !== undefined && choices.length > 0 ? { choices } : {}),
  };
}

/** Recursively freeze a plain value (fastify-style: validated config is immutable). */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
