/**
 * One oslo.config INI file → sections. Mirrors oslo_config/iniparser.py and
 * cfg.ConfigParser: `key = value` or `key: value` (whichever separator comes
 * first), indented lines continue the previous value (joined with "\n"), a
 * blank line ends a value, `#`/`;` start a comment only at column 0 (no inline
 * comments), a value wholly wrapped in matching quotes loses them, and every
 * occurrence of a key is kept in order (oslo uses the last one, or all of them
 * for multi-valued options). Section names other than DEFAULT are matched
 * lowercased, as oslo's `_normalize_group_name`; option keys stay case-sensitive.
 */
import { ConfigError } from '../errors.ts';

/** One assignment: its value and the 1-based line where its key was written. */
export interface IniValue {
  value: string;
  line: number;
}

/** Normalised section name → option key → every value in file order. */
export type IniSections = Map<string, Map<string, IniValue[]>>;

export interface IniFile {
  path: string;
  sections: IniSections;
}

/** oslo's `_normalize_group_name`: DEFAULT stays, everything else is lowercased. */
export function normalizeGroupName(name: string): string {
  return name === 'DEFAULT' ? name : name.toLowerCase();
}

/** Parse the text of one file. `path` is used in error messages only. Throws ConfigError. */
export function parseIni(text: string, path: string): IniFile {
  const sections: IniSections = new Map();
  let section: Map<string, IniValue[]> | null = null;
  let sectionName: string | null = null;
  let key: string | null = null;
  let keyLine = 0;
  let value: string[] = [];

  const fail = (lineno: number, reason: string): never => {
    // The offending line is not echoed: it could hold a secret.
    throw new ConfigError(`${path}: line ${lineno}: ${reason}`, {
      file: path,
      ...(sectionName !== null ? { section: sectionName } : {}),
    });
  };
  const flush = (): void => {
    if (key === null) return;
    if (section === null) fail(keyLine, 'Section must be started before assignment');
    let list = section!.get(key);
    if (list === undefined) {
      list = [];
      section!.set(key, list);
    }
    list.push({ value: value.join('\n'), line: keyLine });
    key = null;
    value = [];
  };

  // Python's readlines() splits on \n only; rstrip() then drops \r and other trailing space.
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  lines.forEach((raw, index) => {
    const lineno = index + 1;
    const line = raw.replace(/\s+$/u, '');
    if (line === '') {
      flush();
      return;
    }
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (key === null) fail(lineno, 'Unexpected continuation line');
      value.push(line.replace(/^\s+/u, ''));
      return;
    }
    flush();
    if (line.startsWith('[')) {
      if (!line.endsWith(']')) fail(lineno, 'Invalid section (must end with ])');
      if (line.length <= 2) fail(lineno, 'Empty section name');
      sectionName = normalizeGroupName(line.slice(1, -1));
      section = sections.get(sectionName) ?? new Map();
      sections.set(sectionName, section);
      return;
    }
    if (line.startsWith('#') || line.startsWith(';')) return;
    const colon = line.indexOf(':');
    const equal = line.indexOf('=');
    if (colon < 0 && equal < 0) fail(lineno, "No ':' or '=' found in assignment");
    const at = colon < 0 || (equal >= 0 && equal < colon) ? equal : colon;
    const k = line.slice(0, at).trim();
    let v = line.slice(at + 1).trim();
    if (v.length > 0 && v[0] === v[v.length - 1] && (v[0] === '"' || v[0] === "'")) v = v.slice(1, -1);
    if (k === '') fail(lineno, 'Key cannot be empty');
    key = k;
    keyLine = lineno;
    value = [v];
  });
  flush();
  return { path, sections };
}
