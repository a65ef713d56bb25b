/**
 * The subset of mysql2 the MySQL datastore uses, and the admin connection:
 * os_admin over the server's unix socket, password read from the agent's
 * 0600 client file. Typed against what we call, so tests can pass a fake.
 */
import type { Pool } from 'mysql2/promise';

export interface SqlClient {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  end(): Promise<void>;
}

export interface SqlTarget {
  socketPath: string;
  user: string;
  password: string | null;
  /** Run on every new connection before anything else (e.g. keep the agent's statements out of the general log). */
  sessionInit?: string;
}

export function connectSql(t: SqlTarget): SqlClient {
  // mysql2 takes ~80 ms and ~20 MiB to load: an agent that has no server yet (before
  // prepare, or answering only pings) never loads it. The pool is made on the first query.
  let pool: Promise<Pool> | undefined;
  const open = () =>
    // A CommonJS module: its exports are the namespace's default (Node also lists them by
    // name, the release's bundle does not).
    (pool ??= import('mysql2/promise').then(({ default: { createPool } }) => {
      const p = createPool({
        socketPath: t.socketPath,
        user: t.user,
        password: t.password ?? undefined,
        connectionLimit: 4,
        multipleStatements: false,
        connectTimeout: 5_000,
      });
      if (t.sessionInit) {
        const init = t.sessionInit;
        // The core pool's connection event fires before the connection serves a query; a connection's queries run in order.
        (p as unknown as { pool: { on(ev: 'connection', fn: (c: { query(sql: string, cb: (err: unknown) => void): void }) => void): void } }).pool.on('connection', (c) => {
          c.query(init, () => {});
        });
      }
      return p;
    }));
  return {
    async query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
      const [rows] = await (await open()).query(sql, params);
      return rows as T[];
    },
    end: async () => {
      if (pool) await (await pool).end();
    },
  };
}

/** mysql2's identifier escaping (backticks doubled), for database names in DDL. */
export function escapeId(name: string): string {
  return '`' + name.replace(/`/g, '``') + '`';
}
