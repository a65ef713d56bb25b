/**
 * Trove's instance modules (`trove module-create`, `module-apply`, `module-query`): a
 * module is a typed blob (base64 contents) that a driver on the guest applies. The
 * records and layout follow Trove 18's ModuleManager (guestagent/module/module_manager.py):
 * `<dir>/<type>/<id>/contents.dat` holds the decoded contents, `result.json` the
 * result dict Trove shows (status, message, created/updated/removed, ...). The one
 * driver here is Trove's `ping` (its reference driver: applies by answering the
 * `message=` line of the contents). Other types, such as `new_relic_license`, which
 * needs New Relic's agent on the image, are refused as Trove refuses a type without a
 * driver. Contents can hold secrets (license keys): files are root-only and never logged.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { BadRequestError, MissingAttributeError, ModuleInvalidError, ModuleTypeNotFoundError, NotFoundError, RemoteKeyError } from './errors.ts';

export const APPLY_TO_ALL = 'all';
const CONTENTS = 'contents.dat';
const RESULT = 'result.json';

/** A driver answers (applied, message); a thrown error is reported as Trove's output decorator does. */
interface ModuleDriver {
  apply(contents: Buffer): [boolean, unknown];
  remove(contents: Buffer | null): [boolean, unknown];
  failApply: string;
}

/** Trove's KeyValueCodec.deserialize with its defaults ('=' delimiter, '#' comments, no quoting). */
function keyValues(text: string): Map<string, string | boolean> {
  const out = new Map<string, string | boolean>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const at = line.indexOf('=');
    if (at < 0) throw new Error('not enough values to unpack (expected 2, got 1)');
    const k = line.slice(0, at);
    const v = line.slice(at + 1);
    out.set(k.trim(), ['true', 'false'].includes(v.toLowerCase()) ? v.toLowerCase() === 'true' : v.replace(/#.*$/, ''));
  }
  return out;
}

const DRIVERS: Record<string, ModuleDriver> = {
  ping: {
    failApply: 'Could not extract ping message',
    apply(contents) {
      for (const [k, v] of keyValues(contents.toString('utf8'))) if (k.toLowerCase() === 'message') return [true, v];
      return [false, 'Message not found in contents file'];
    },
    remove: () => [true, ''],
  },
};

export type ModuleResult = Record<string, unknown>;

export interface ModuleManagerOptions {
  /** Where module records live (Trove's agent: ~/modules; ours: <state dir>/modules). */
  dir: string;
  /** guest_info's datastore_manager: a module made for another datastore is refused. */
  datastoreManager: string;
  /** [DEFAULT] module_types: the types this guest may load a driver for. */
  moduleTypes: readonly string[];
  log: Logger;
  /** Trove's timestamp, local time to the hundredth of a second ('2026-12-03 22:40:01.12'). */
  now?: () => string;
}

function timestamp(d = new Date()): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(Math.floor(d.getMilliseconds() / 10))}`;
}

/** A module id or type names a directory: Trove's are UUIDs and driver names. */
function pathPart(what: string, v: unknown): string {
  if (typeof v !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(v)) throw new BadRequestError(`the module's ${what} must be a plain name (letters, digits, '_', '.', '-'), got ${JSON.stringify(v)}`);
  return v;
}

export interface ModuleManager {
  list(opts: { isAdmin: boolean; includeContents: boolean }): ModuleResult[];
  apply(modules: unknown[]): ModuleResult[];
  remove(module: unknown): void;
}

export function createModuleManager(o: ModuleManagerOptions): ModuleManager {
  const now = o.now ?? (() => timestamp());
  const types = new Set(o.moduleTypes.map((t) => t.toLowerCase()));
  const driver = (type: unknown): ModuleDriver => {
    const d = typeof type === 'string' && types.has(type) ? DRIVERS[type] : undefined;
    if (!d) throw new ModuleTypeNotFoundError(`No driver implemented for module type '${String(type)}'`);
    return d;
  };
  const moduleDir = (type: string, id: string): string => {
    const dir = join(o.dir, pathPart('type', type), pathPart('id', id));
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(o.dir, 0o700);
    return dir;
  };
  const readResult = (dir: string): ModuleResult | null => {
    try {
      return JSON.parse(readFileSync(join(dir, RESULT), 'utf8')) as ModuleResult;
    } catch {
      return null;
    }
  };
  const writeResult = (dir: string, r: ModuleResult) => writeFileSync(join(dir, RESULT), JSON.stringify(r), { mode: 0o600 });
  const unwrap = (data: unknown): Record<string, unknown> => {
    if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new BadRequestError('each module must be a dictionary');
    const m = (data as Record<string, unknown>)['module'];
    if (m === undefined) throw new RemoteKeyError("'module'");
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new BadRequestError("'module' must be a dictionary");
    return m as Record<string, unknown>;
  };
  const get = (m: Record<string, unknown>, k: string, dflt: unknown) => (k in m ? m[k] : dflt);

  function applyOne(m: Record<string, unknown>): ModuleResult {
    const name = m['name'];
    const type = m['type'];
    const tenant = get(m, 'tenant', APPLY_TO_ALL);
    const datastore = get(m, 'datastore', APPLY_TO_ALL);
    const dsVersion = get(m, 'datastore_version', APPLY_TO_ALL);
    const contents = m['contents'];
    const autoApply = get(m, 'auto_apply', true);
    const visible = get(m, 'visible', true);
    let isAdmin = m['is_admin'] ?? null;
    // Modules from before is_admin existed: Trove's own fallback.
    if (isAdmin === null) isAdmin = tenant === APPLY_TO_ALL || !visible || Boolean(autoApply);
    if (!name) throw new MissingAttributeError('Module name not specified');
    if (!contents) throw new MissingAttributeError('Module contents not specified');
    if (typeof contents !== 'string') throw new BadRequestError("the module's contents must be a base64 string");
    const d = driver(type);
    if (datastore && datastore !== APPLY_TO_ALL && datastore !== o.datastoreManager) throw new ModuleInvalidError(`Module not valid for datastore ${o.datastoreManager}`);
    const dir = moduleDir(type as string, pathPart('id', m['id']));
    const data = Buffer.from(contents, 'base64');
    writeFileSync(join(dir, CONTENTS), data, { mode: 0o600 });
    const at = now();
    const result: ModuleResult = readResult(dir) ?? { created: at, contents: null };
    let applied = false;
    let message: unknown = null;
    try {
      [applied, message] = d.apply(data);
    } catch (err) {
      applied = false;
      message = `${d.failApply}: ${(err as Error).message}`;
    }
    Object.assign(result, {
      removed: null, status: applied ? 'OK' : 'ERROR', message, updated: at, id: m['id'], md5: m['md5'] ?? null, type, name,
      datastore: datastore || APPLY_TO_ALL, datastore_version: dsVersion || APPLY_TO_ALL, tenant: tenant || APPLY_TO_ALL,
      auto_apply: autoApply, visible, is_admin: isAdmin,
    });
    writeResult(dir, result);
    o.log.info({ module: name, type, status: result['status'] }, 'module applied');
    return result;
  }

  return {
    list({ isAdmin, includeContents }) {
      const out: ModuleResult[] = [];
      if (!existsSync(o.dir)) return out;
      for (const type of readdirSync(o.dir)) {
        const typeDir = join(o.dir, type);
        let ids: string[];
        try {
          ids = readdirSync(typeDir);
        } catch {
          continue;
        }
        for (const id of ids) {
          const dir = join(typeDir, id);
          const r = readResult(dir);
          if (!r || r['removed'] || !(isAdmin || r['visible'])) continue;
          if (includeContents) {
            r['contents'] = !isAdmin && (r['is_admin'] || r['admin_only'])
              ? Buffer.from(`Must be admin to retrieve contents for module ${String(r['name'] ?? 'Unknown')}`).toString('base64')
              : readFileSync(join(dir, CONTENTS)).toString('base64');
          }
          out.push(r);
        }
      }
      // Newest first, as Trove sorts them (its timestamps sort as strings).
      return out.sort((a, b) => String(b['updated']).localeCompare(String(a['updated'])));
    },

    apply(modules) {
      const ms = modules.map(unwrap);
      // Trove's order: by apply_order, then priority modules first (both sorts stable); older records lack them.
      if (ms.every((m) => 'apply_order' in m) && ms.every((m) => 'priority_apply' in m)) {
        ms.sort((a, b) => Number(a['apply_order']) - Number(b['apply_order']));
        ms.sort((a, b) => Number(Boolean(b['priority_apply'])) - Number(Boolean(a['priority_apply'])));
      } else if (ms.every((m) => 'apply_order' in m)) ms.sort((a, b) => Number(a['apply_order']) - Number(b['apply_order']));
      return ms.map(applyOne);
    },

    remove(data) {
      const m = unwrap(data);
      const name = m['name'];
      if (!name) throw new MissingAttributeError('Module name not specified');
      const d = driver(m['type']);
      const dir = moduleDir(m['type'] as string, pathPart('id', m['id']));
      const r = readResult(dir);
      if (!r) throw new NotFoundError(`Module '${String(name)}' has not been applied`);
      const contentsFile = join(dir, CONTENTS);
      d.remove(existsSync(contentsFile) ? readFileSync(contentsFile) : null);
      r['removed'] = now();
      writeResult(dir, r);
      o.log.info({ module: name, type: m['type'] }, 'module removed');
    },
  };
}
