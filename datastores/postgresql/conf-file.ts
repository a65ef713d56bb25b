import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';

/** PostgreSQL stops at this nesting of include directives (guc-file.l's CONF_FILE_MAX_DEPTH). */
const MAX_DEPTH = 10;

/**
 * One `name [=] value` line of a postgresql.conf, as guc-file.l reads it: the value is a quoted
 * string ('' and backslash escapes) or a bare token; a comment may follow.
 */
const LINE = /^[ \t]*([A-Za-z_][A-Za-z0-9_$.]*)[ \t]*=?[ \t]*('(?:[^'\\]|''|\\.)*'|[^\s'#]+)[ \t]*(?:#.*)?$/;

function unquote(v: string): string {
  if (!v.startsWith("'")) return v;
  return v.slice(1, -1).replace(/''/g, "'").replace(/\\(.)/g, '$1');
}

/**
 * The value a setting ends with after PostgreSQL reads `file`: top to bottom, the last assignment
 * wins, and `include`, `include_if_exists` and `include_dir` are read where they stand (a relative
 * path is relative to the including file's directory; a directory's `*.conf` files not starting
 * with '.' in byte order). Null when no file read sets it. Missing files are skipped here (the
 * server itself refuses a missing `include`; that is its error to report).
 */
export function settingFromConf(file: string, name: string): string | null {
  let found: string | null = null;
  const read = (path: string, depth: number): void => {
    if (depth > MAX_DEPTH || !existsSync(path)) return;
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      return;
    }
    for (const line of text.split('\n')) {
      const m = LINE.exec(line);
      if (!m) continue;
      const key = m[1]!.toLowerCase();
      const value = unquote(m[2]!);
      const target = isAbsolute(value) ? value : join(dirname(path), value);
      if (key === 'include' || key === 'include_if_exists') read(target, depth + 1);
      else if (key === 'include_dir') {
        let entries: string[] = [];
        try {
          if (statSync(target).isDirectory()) entries = readdirSync(target);
        } catch {
          entries = [];
        }
        for (const f of entries.filter((e) => e.endsWith('.conf') && !e.startsWith('.')).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))) {
          read(join(target, f), depth + 1);
        }
      } else if (key === name.toLowerCase()) found = value;
    }
  };
  read(file, 0);
  return found;
}
