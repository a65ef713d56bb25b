/**
 * oslo.config value resolution over parsed files and the environment
 * (cfg.ConfigOpts._do_get, _Namespace._get_file_value, StrSubWrapper):
 * environment `OS_<GROUP>__<OPTION>` first, then the newest file that sets the
 * option (its last occurrence), else the default; multi-valued options
 * concatenate every file's values, oldest first. `$name`, `${name}` and
 * `${group.name}` are substituted before conversion ($$ and \$ escape a dollar);
 * an unknown name is an error, as in oslo.
 */
import { ConfigError } from '../errors.ts';
import type { IniFile, IniValue } from './ini.ts';
import { convertValue, type OptionSpec, type OptionTable, type ValueOrigin } from './schema.ts';
import type { OptionValue } from './types.ts';

/** oslo's environment variable name for an option. */
export function envName(group: string, name: string): string {
  return `OS_${group.toUpperCase()}__${name.toUpperCase()}`;
}

interface RawHit {
  raw: string | string[];
  origin: ValueOrigin;
}

// string.Template with oslo's idpattern, IGNORECASE as Python's Template default.
const TEMPLATE = /\$(?:(\$)|([_a-z][._a-z0-9]*)|\{([_a-z][._a-z0-9]*)\}|())/giu;

export class Resolver {
  readonly #table: OptionTable;
  /** Newest file first, as oslo's `_Namespace._parsed`. */
  readonly #files: readonly IniFile[];
  readonly #env: Record<string, string | undefined>;
  readonly #cache = new Map<string, OptionValue>();
  readonly #resolving = new Set<string>();

  constructor(table: OptionTable, filesInReadOrder: readonly IniFile[], env: Record<string, string | undefined>) {
    this.#table = table;
    this.#files = [...filesInReadOrder].reverse();
    this.#env = env;
  }

  spec(group: string, name: string): OptionSpec | undefined {
    const g = this.#table[group];
    return g !== undefined && Object.hasOwn(g, name) ? g[name] : undefined;
  }

  /** The typed value of a registered option. Throws ConfigError. */
  get(group: string, name: string): OptionValue {
    const key = `${group}\0${name}`;
    const cached = this.#cache.get(key);
    if (cached !== undefined || this.#cache.has(key)) return cached ?? null;
    const spec = this.spec(group, name);
    if (spec === undefined) throw new ConfigError(`no such option [${group}] ${name}`, { section: group, option: name });
    if (this.#resolving.has(key)) {
      throw new ConfigError(`[${group}] ${name}: circular $-substitution`, { section: group, option: name });
    }
    this.#resolving.add(key);
    try {
      const value = this.#compute(group, name, spec);
      this.#cache.set(key, value);
      return value;
    } finally {
      this.#resolving.delete(key);
    }
  }

  /** Where the value of `[group] name` comes from, or null for the default. */
  origin(group: string, name: string): ValueOrigin | null {
    const spec = this.spec(group, name);
    return spec === undefined ? null : (this.#raw(group, name, spec)?.origin ?? null);
  }

  #compute(group: string, name: string, spec: OptionSpec): OptionValue {
    const hit = this.#raw(group, name, spec);
    if (hit === null) {
      // oslo converts defaults too (cfg.ConfigOpts._do_get: convert(opt.default)): a string default
      // such as mariadb's default_password_length "${mysql.default_password_length}" becomes an int.
      const d = spec.default;
      if (typeof d !== 'string') return d;
      const origin = { source: 'default' };
      return convertValue(group, name, spec, this.#substitute(d, group, name, origin), origin);
    }
    if (Array.isArray(hit.raw)) {
      return hit.raw.map((r) => {
        const v = convertValue(group, name, spec, this.#substitute(r, group, name, hit.origin), hit.origin);
        return v === null ? '' : String(v);
      });
    }
    return convertValue(group, name, spec, this.#substitute(hit.raw, group, name, hit.origin), hit.origin);
  }

  #raw(group: string, name: string, spec: OptionSpec): RawHit | null {
    const env = envName(group, name);
    const envValue = this.#env[env];
    if (envValue !== undefined) {
      return { raw: spec.multi ? [envValue] : envValue, origin: { source: `environment variable ${env}` } };
    }
    const names: [string, string][] = [[group, name]];
    for (const [dg, dn] of spec.deprecated ?? []) names.push([dg ?? group, dn ?? name]);
    let multi: IniValue[] = [];
    let multiOrigin: ValueOrigin | null = null;
    for (const file of this.#files) {
      for (const [g, n] of names) {
        const values = file.sections.get(g)?.get(n);
        if (values === undefined || values.length === 0) continue;
        if (!spec.multi) {
          const last = values[values.length - 1]!;
          return { raw: last.value, origin: { source: file.path, line: last.line } };
        }
        multi = [...values, ...multi];
        multiOrigin ??= { source: file.path, line: values[0]!.line };
      }
    }
    return multiOrigin === null ? null : { raw: multi.map((v) => v.value), origin: multiOrigin };
  }

  #substitute(value: string, group: string, name: string, origin: ValueOrigin): string {
    if (!value.includes('$')) return value;
    const text = value.replaceAll('\\$', () => '$$'); // function form: a '$$' replacement string would mean one '$'
    return text.replace(TEMPLATE, (match, escaped?: string, named?: string, braced?: string) => {
      if (escaped !== undefined) return '$';
      const id = named ?? braced;
      if (id === undefined) return match; // lone "$": left as is (safe_substitute)
      return pythonStr(this.#lookup(id, group, name, origin));
    });
  }

  #lookup(id: string, group: string, name: string, origin: ValueOrigin): OptionValue {
    const dot = id.indexOf('.');
    if (dot >= 0) {
      const g = id.slice(0, dot);
      const n = id.slice(dot + 1);
      const target = g === 'DEFAULT' ? g : g.toLowerCase();
      if (this.spec(target, n) !== undefined) return this.get(target, n);
    } else if (this.spec(group, id) !== undefined) {
      return this.get(group, id);
    }
    if (this.spec('DEFAULT', id) !== undefined) return this.get('DEFAULT', id);
    const at = origin.line !== undefined ? `${origin.source}:${origin.line}` : origin.source;
    throw new ConfigError(`${at}: [${group}] ${name}: unknown substitution variable $${id}`, {
      file: origin.source,
      section: group,
      option: name,
    });
  }
}

/** Python's str() of a converted option value, as string.Template inserts it. */
function pythonStr(v: OptionValue): string {
  if (v === null) return ''; // StrSubWrapper returns '' for None
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (Array.isArray(v)) return `[${v.map((s) => `'${s}'`).join(', ')}]`;
  if (typeof v === 'object') return `{${Object.entries(v).map(([k, s]) => `'${k}': '${s}'`).join(', ')}}`;
  return String(v);
}
