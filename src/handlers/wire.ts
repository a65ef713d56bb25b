/**
 * Parsing Trove's wire dicts into domain values (and back), once, at the
 * boundary. Shapes are Trove's serialized models (trove/common/db/models.py):
 * a schema is `{_name, _collate, _character_set}`, a user
 * `{_name, _password, _host, _databases, _is_root}`. Datastore-specific
 * validation of the values happens in the datastore; here only the shape.
 */
import { BadRequestError } from '../errors.ts';
import type { Page, PageRequest, Schema, User, UserAttributes } from '../datastore.ts';

type Dict = Record<string, unknown>;

export function isDict(v: unknown): v is Dict {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function str(args: Dict, name: string): string {
  const v = args[name];
  if (typeof v !== 'string') throw new BadRequestError(`'${name}' must be a string`);
  return v;
}

export function optStr(args: Dict, name: string): string | null {
  const v = args[name];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw new BadRequestError(`'${name}' must be a string or null`);
  return v;
}

export function optBool(args: Dict, name: string, dflt: boolean): boolean {
  const v = args[name];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') throw new BadRequestError(`'${name}' must be a boolean`);
  return v;
}

export function optInt(args: Dict, name: string): number | null {
  const v = args[name];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new BadRequestError(`'${name}' must be an integer`);
  return v;
}

export function optDict(args: Dict, name: string): Dict | null {
  const v = args[name];
  if (v === undefined || v === null) return null;
  if (!isDict(v)) throw new BadRequestError(`'${name}' must be a dictionary`);
  return v;
}

export function list(args: Dict, name: string): unknown[] {
  const v = args[name];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new BadRequestError(`'${name}' must be a list`);
  return v;
}

function field(d: Dict, key: string, what: string): string | null {
  const v = d[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw new BadRequestError(`${what}: '${key}' must be a string`);
  return v;
}

export function parseSchema(v: unknown): Schema {
  if (typeof v === 'string') return { name: v, characterSet: null, collate: null };
  if (!isDict(v)) throw new BadRequestError('a database must be a dictionary with a _name');
  const name = field(v, '_name', 'database');
  if (name === null) throw new BadRequestError("a database must have a '_name'");
  return { name, characterSet: field(v, '_character_set', 'database'), collate: field(v, '_collate', 'database') };
}

export function parseUser(v: unknown): User {
  if (!isDict(v)) throw new BadRequestError('a user must be a dictionary with a _name');
  const name = field(v, '_name', 'user');
  if (name === null) throw new BadRequestError("a user must have a '_name'");
  const dbs = v['_databases'];
  if (dbs !== undefined && dbs !== null && !Array.isArray(dbs)) throw new BadRequestError("user: '_databases' must be a list");
  return {
    name,
    host: field(v, '_host', 'user'),
    password: field(v, '_password', 'user'),
    databases: (Array.isArray(dbs) ? dbs : []).map((d) => parseSchema(d).name),
    isRoot: v['_is_root'] === true,
  };
}

export function parseUserAttributes(v: unknown): UserAttributes {
  if (!isDict(v)) throw new BadRequestError("'user_attrs' must be a dictionary");
  return { name: field(v, 'name', 'user_attrs'), host: field(v, 'host', 'user_attrs'), password: field(v, 'password', 'user_attrs') };
}

export function parsePage(args: Dict): PageRequest {
  const limit = optInt(args, 'limit');
  if (limit !== null && limit < 0) throw new BadRequestError("'limit' must not be negative");
  return { limit, marker: optStr(args, 'marker'), includeMarker: optBool(args, 'include_marker', false) };
}

export function serializeSchema(s: Schema): Dict {
  return { _name: s.name, _collate: s.collate ?? null, _character_set: s.characterSet ?? null };
}

export function serializeUser(u: User): Dict {
  return {
    _name: u.name,
    _password: u.password ?? null,
    _host: u.host ?? '%',
    _databases: u.databases.map((name) => serializeSchema({ name })),
    _is_root: u.isRoot ?? false,
  };
}

/** Trove answers list calls with the tuple (items, next_marker), a 2-element list on the wire. */
export function serializePage<T>(p: Page<T>, item: (t: T) => Dict): [Dict[], string | null] {
  return [p.items.map(item), p.nextMarker];
}

/** backup_info as Trove's taskmanager sends it (create_backup, prepare for a restore). */
export function parseBackupInfo(v: unknown): import('../datastore.ts').BackupInfo | null {
  if (v === undefined || v === null) return null;
  if (!isDict(v)) throw new BadRequestError("'backup_info' must be a dictionary");
  const s = (k: string): string | null => field(v, k, 'backup_info');
  const id = s('id');
  if (id === null) throw new BadRequestError("'backup_info' must have an 'id'");
  const parentRaw = v['parent'];
  let parent: { location: string; checksum: string | null } | null = null;
  if (isDict(parentRaw)) {
    const location = field(parentRaw, 'location', 'backup_info.parent');
    if (location === null) throw new BadRequestError("backup_info.parent must have a 'location'");
    parent = { location, checksum: field(parentRaw, 'checksum', 'backup_info.parent') };
  } else if (parentRaw !== undefined && parentRaw !== null) {
    throw new BadRequestError("backup_info.parent must be a dictionary");
  }
  return {
    id,
    instanceId: s('instance_id'),
    location: s('location'),
    type: s('type'),
    checksum: s('checksum'),
    datastore: s('datastore'),
    datastoreVersion: s('datastore_version'),
    swiftContainer: s('swift_container'),
    swiftUrl: s('swift_url'),
    parent,
  };
}
