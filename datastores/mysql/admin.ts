/**
 * Databases, users and access on MySQL/MariaDB with Trove's semantics
 * (trove/guestagent/datastore/mysql_common/service.py MySqlAdmin): ignore
 * lists hidden and untouchable, Trove's pagination (a page plus the marker of
 * its last item when more follow), names validated by Trove's rules, values
 * passed as parameters and identifiers escaped.
 */
import { DatabaseNotFoundError, InvalidValueError, UserNotFoundError, BadRequestError } from '../../src/errors.ts';
import type { Admin, OpContext, Page, PageRequest, Schema, User, UserAttributes } from '../../src/datastore.ts';
import { validateDatabaseName, validateHost, validatePassword, validateUserName } from './names.ts';
import { escapeId, type SqlClient } from './sql.ts';

export interface AdminOptions {
  sql: () => SqlClient;
  ignoreUsers: readonly string[];
  ignoreDbs: readonly string[];
}

const CHARSET = /^[A-Za-z0-9_]+$/;
/** Users per CREATE USER statement in createUsers. */
const CREATE_CHUNK = 500;

interface MysqlError {
  code?: string;
  errno?: number;
  sqlMessage?: string;
}

export function createMysqlAdmin(o: AdminOptions): Admin {
  const ignoredUser = (name: string) => o.ignoreUsers.includes(name);
  const ignoredDb = (name: string) => o.ignoreDbs.includes(name);

  const checkDb = (name: string): string => {
    validateDatabaseName(name);
    if (ignoredDb(name)) throw new BadRequestError(`Database '${name}' is reserved and cannot be used.`);
    return name;
  };
  const checkUser = (name: string, host: string | null | undefined): { name: string; host: string } => {
    validateUserName(name);
    if (ignoredUser(name)) throw new BadRequestError(`User '${name}' is reserved and cannot be used.`);
    return { name, host: validateHost(host) };
  };

  async function userExists(name: string, host: string): Promise<boolean> {
    const rows = await o.sql().query('SELECT 1 FROM mysql.user WHERE User = ? AND Host = ?', [name, host]);
    return rows.length > 0;
  }
  async function requireUser(name: string, host: string): Promise<void> {
    if (!(await userExists(name, host))) throw new UserNotFoundError(`${name}@${host}`);
  }
  /**
   * 'name'@'host' as information_schema writes GRANTEE (built the same way in SQL below), in lower
   * case: the server matches GRANTEE case-insensitively, so a get_user with 'LOCALHOST' finds the
   * grants of 'localhost' as the per-user query before this did.
   */
  const grantee = (name: string, host: string) => `'${name}'@'${host}'`.toLowerCase();
  /**
   * The databases each user holds a privilege on, in one query: the server
   * builds SCHEMA_PRIVILEGES whole for every query (all grants of all users),
   * so asking per user costs a page of N users N such builds.
   */
  async function grantedDatabasesOf(users: ReadonlyArray<{ name: string; host: string }>): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>(users.map((u) => [grantee(u.name, u.host), []]));
    if (users.length === 0) return out;
    const rows = await o.sql().query<{ grantee: string; db: string }>(
      'SELECT DISTINCT GRANTEE AS grantee, TABLE_SCHEMA AS db FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE IN (' +
        users.map(() => 'CONCAT("\'", ?, "\'@\'", ?, "\'")').join(', ') +
        ') ORDER BY db',
      users.flatMap((u) => [u.name, u.host]),
    );
    for (const r of rows) if (!ignoredDb(r.db)) out.get(r.grantee.toLowerCase())?.push(r.db);
    return out;
  }
  async function grantedDatabases(name: string, host: string): Promise<string[]> {
    return (await grantedDatabasesOf([{ name, host }])).get(grantee(name, host)) ?? [];
  }

  type NewUser = { name: string; host: string; password: string; databases: string[] };
  /** One user as Trove's create_users loop does it: CREATE USER, then its grants. */
  async function createUser(u: NewUser, ctx: OpContext): Promise<void> {
    await o.sql().query('CREATE USER ?@? IDENTIFIED BY ?', [u.name, u.host, u.password]);
    for (const d of u.databases) await o.sql().query(`GRANT ALL PRIVILEGES ON ${escapeId(d)}.* TO ?@?`, [u.name, u.host]);
    ctx.log.info({ user: u.name, host: u.host }, 'user created');
  }
  /** (User, Host) IN (...) for these users, hosts compared in lower case as the server stores them. */
  const inUsers = (us: readonly NewUser[]) => ({
    where: `(User, LOWER(Host)) IN (${us.map(() => '(?, LOWER(?))').join(', ')})`,
    params: us.flatMap((u) => [u.name, u.host]),
  });
  /**
   * A chunk of users in one CREATE USER and one GRANT per database: each such
   * statement makes the server rebuild its privilege cache, so a statement per
   * user grows with the square of the user count. The result is Trove's
   * one-by-one loop's: when any user of the chunk already exists (or appears
   * twice), the chunk runs one by one; when a chunk statement fails, the users
   * it made (none existed before) are dropped and the chunk runs one by one,
   * so it stops at the same user with the same error, those before it made.
   */
  async function createUserChunk(chunk: NewUser[], ctx: OpContext): Promise<void> {
    const keys = new Set(chunk.map((u) => `${u.name}\u0000${u.host.toLowerCase()}`));
    const q = inUsers(chunk);
    const oneByOne = chunk.length === 1 || keys.size !== chunk.length || (await o.sql().query(`SELECT 1 FROM mysql.user WHERE ${q.where} LIMIT 1`, q.params)).length > 0;
    if (!oneByOne) {
      try {
        await o.sql().query(`CREATE USER ${chunk.map(() => '?@? IDENTIFIED BY ?').join(', ')}`, chunk.flatMap((u) => [u.name, u.host, u.password]));
        const byDb = new Map<string, NewUser[]>();
        for (const u of chunk) {
          for (const d of new Set(u.databases)) {
            const us = byDb.get(d);
            if (us) us.push(u);
            else byDb.set(d, [u]);
          }
        }
        for (const [d, us] of byDb) await o.sql().query(`GRANT ALL PRIVILEGES ON ${escapeId(d)}.* TO ${us.map(() => '?@?').join(', ')}`, us.flatMap((u) => [u.name, u.host]));
        for (const u of chunk) ctx.log.info({ user: u.name, host: u.host }, 'user created');
        return;
      } catch (e) {
        ctx.log.debug({ err: (e as MysqlError).code }, 'creating users together failed: undoing them, then one by one');
        const made = await o.sql().query<{ User: string; Host: string }>(`SELECT User, Host FROM mysql.user WHERE ${q.where}`, q.params);
        if (made.length > 0) await o.sql().query(`DROP USER ${made.map(() => '?@?').join(', ')}`, made.flatMap((u) => [u.User, u.Host]));
      }
    }
    for (const u of chunk) await createUser(u, ctx);
  }

  function page<T>(rows: T[], limit: number | null | undefined, marker: (t: T) => string): Page<T> {
    if (limit === null || limit === undefined || rows.length <= limit) return { items: rows, nextMarker: null };
    const items = rows.slice(0, limit);
    return { items, nextMarker: marker(items[items.length - 1]!) };
  }

  const translate = (e: unknown, what: { db?: string; charset?: string | null; collate?: string | null }): never => {
    const err = e as MysqlError;
    switch (err.code) {
      case 'ER_UNKNOWN_CHARACTER_SET':
        throw new InvalidValueError(`'${what.charset}' not a valid character set.`);
      case 'ER_UNKNOWN_COLLATION':
        throw new InvalidValueError(`'${what.collate}' not a valid collation.`);
      case 'ER_COLLATION_CHARSET_MISMATCH':
        throw new InvalidValueError(`${what.collate} not a valid collation for charset ${what.charset}.`);
      case 'ER_DB_DROP_EXISTS':
        throw new DatabaseNotFoundError(what.db ?? '');
      default:
        throw e;
    }
  };

  return {
    async createDatabases(dbs: Schema[], ctx: OpContext) {
      for (const db of dbs) checkDb(db.name);
      for (const db of dbs) {
        const charset = db.characterSet ?? null;
        const collate = db.collate ?? null;
        for (const v of [charset, collate]) if (v !== null && !CHARSET.test(v)) throw new InvalidValueError(`'${v}' not a valid character set or collation.`);
        // Trove's defaults: utf8 / utf8_general_ci; with only one given, the server derives the other.
        let sql = `CREATE DATABASE IF NOT EXISTS ${escapeId(db.name)}`;
        const params: string[] = [];
        if (charset === null && collate === null) {
          sql += ' CHARACTER SET = ? COLLATE = ?';
          params.push('utf8', 'utf8_general_ci');
        } else {
          if (charset !== null) (sql += ' CHARACTER SET = ?', params.push(charset));
          if (collate !== null) (sql += ' COLLATE = ?', params.push(collate));
        }
        try {
          await o.sql().query(sql, params);
        } catch (e) {
          translate(e, { charset, collate });
        }
        ctx.log.info({ database: db.name }, 'database created');
      }
    },

    async listDatabases(p: PageRequest) {
      const params: unknown[] = [o.ignoreDbs.length ? [...o.ignoreDbs] : ['']];
      let sql = 'SELECT SCHEMA_NAME AS name, DEFAULT_CHARACTER_SET_NAME AS cs, DEFAULT_COLLATION_NAME AS co FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN (?)';
      if (p.marker) (sql += ` AND SCHEMA_NAME ${p.includeMarker ? '>=' : '>'} ?`, params.push(p.marker));
      sql += ' ORDER BY SCHEMA_NAME ASC';
      if (p.limit !== null && p.limit !== undefined) (sql += ' LIMIT ?', params.push(p.limit + 1));
      const rows = await o.sql().query<{ name: string; cs: string; co: string }>(sql, params);
      return page(rows.map((r) => ({ name: r.name, characterSet: r.cs, collate: r.co })), p.limit, (s) => s.name);
    },

    async deleteDatabase(db: Schema, ctx: OpContext) {
      checkDb(db.name);
      try {
        await o.sql().query(`DROP DATABASE ${escapeId(db.name)}`);
      } catch (e) {
        translate(e, { db: db.name });
      }
      ctx.log.info({ database: db.name }, 'database deleted');
    },

    async createUsers(users: User[], ctx: OpContext) {
      const checked = users.map((u) => {
        const { name, host } = checkUser(u.name, u.host);
        const password = validatePassword(u.password);
        for (const d of u.databases) checkDb(d);
        return { name, host, password, databases: u.databases };
      });
      for (let i = 0; i < checked.length; i += CREATE_CHUNK) await createUserChunk(checked.slice(i, i + CREATE_CHUNK), ctx);
    },

    async listUsers(p: PageRequest) {
      const params: unknown[] = [o.ignoreUsers.length ? [...o.ignoreUsers] : ['']];
      let sql =
        "SELECT User AS name, Host AS host, CONCAT(User, '@', Host) AS marker FROM mysql.user WHERE Host != 'localhost' AND User NOT IN (?) AND User != ''";
      if (p.marker) (sql += ` AND CONCAT(User, '@', Host) ${p.includeMarker ? '>=' : '>'} ?`, params.push(p.marker));
      sql += ' ORDER BY marker';
      if (p.limit !== null && p.limit !== undefined) (sql += ' LIMIT ?', params.push(p.limit + 1));
      const rows = await o.sql().query<{ name: string; host: string; marker: string }>(sql, params);
      const pg = page(rows, p.limit, (r) => r.marker);
      const dbs = await grantedDatabasesOf(pg.items);
      return {
        items: pg.items.map((r) => ({ name: r.name, host: r.host, password: null, databases: dbs.get(grantee(r.name, r.host)) ?? [] })),
        nextMarker: pg.nextMarker,
      };
    },

    async getUser(name: string, host: string | null) {
      const u = checkUser(name, host);
      if (!(await userExists(u.name, u.host))) return null;
      return { name: u.name, host: u.host, password: null, databases: await grantedDatabases(u.name, u.host) };
    },

    async deleteUser(user: User, ctx: OpContext) {
      const u = checkUser(user.name, user.host);
      await requireUser(u.name, u.host);
      await o.sql().query('DROP USER ?@?', [u.name, u.host]);
      ctx.log.info({ user: u.name, host: u.host }, 'user deleted');
    },

    async updateAttributes(name: string, host: string | null, attrs: UserAttributes, ctx: OpContext) {
      const u = checkUser(name, host);
      const newName = attrs.name ? checkUser(attrs.name, attrs.host ?? u.host).name : u.name;
      const newHost = attrs.host ? validateHost(attrs.host) : u.host;
      const password = attrs.password ? validatePassword(attrs.password) : null;
      await requireUser(u.name, u.host);
      if (password !== null) await o.sql().query('ALTER USER ?@? IDENTIFIED BY ?', [u.name, u.host, password]);
      if (newName !== u.name || newHost !== u.host) await o.sql().query('RENAME USER ?@? TO ?@?', [u.name, u.host, newName, newHost]);
      ctx.log.info({ user: u.name, host: u.host, renamed: newName !== u.name || newHost !== u.host }, 'user attributes updated');
    },

    async changePasswords(users: User[], ctx: OpContext) {
      const checked = users.map((x) => ({ ...checkUser(x.name, x.host), password: validatePassword(x.password) }));
      for (const u of checked) {
        await requireUser(u.name, u.host);
        await o.sql().query('ALTER USER ?@? IDENTIFIED BY ?', [u.name, u.host, u.password]);
        ctx.log.info({ user: u.name, host: u.host }, 'password changed');
      }
    },

    async grantAccess(name: string, host: string | null, databases: string[]) {
      const u = checkUser(name, host);
      for (const d of databases) checkDb(d);
      await requireUser(u.name, u.host);
      for (const d of databases) await o.sql().query(`GRANT ALL PRIVILEGES ON ${escapeId(d)}.* TO ?@?`, [u.name, u.host]);
    },

    async revokeAccess(name: string, host: string | null, database: string) {
      const u = checkUser(name, host);
      checkDb(database);
      await requireUser(u.name, u.host);
      try {
        await o.sql().query(`REVOKE ALL PRIVILEGES ON ${escapeId(database)}.* FROM ?@?`, [u.name, u.host]);
      } catch (e) {
        // No grant on that database: nothing to revoke, as Trove treats it.
        if ((e as MysqlError).code !== 'ER_NONEXISTING_GRANT') throw e;
      }
    },

    async listAccess(name: string, host: string | null) {
      const u = checkUser(name, host);
      await requireUser(u.name, u.host);
      return (await grantedDatabases(u.name, u.host)).map((d) => ({ name: d, characterSet: null, collate: null }));
    },
  };
}
