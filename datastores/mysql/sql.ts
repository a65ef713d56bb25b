/**
 * The subset of mysql2 the MySQL datastore uses, and the admin connection:
 * os_admin over the server's unix socket, password read from the agent's
 * 0600 client file. Typed against what we call, so tests can pass a fake.
 */
import { createPool, type Pool } from 'mysql2/promise';

export interface SqlClient {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  end(): Promise<void>;
}

export interface SqlTarget {
  socketPath: string;
  user: string;
  password: string | null;
}

export function connectSql(t: SqlTarget): SqlClient {
  const pool: Pool = createPool({
    socketPath: t.socketPath,
    user: t.user,
    password: t.password ?? undefined,
    connectionLimit: 4,
    multipleStatements: false,
    connectTimeout: 5_000,
  });
  return {
    async query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
      const [rows] = await pool.query(sql, params);
      return rows as T[];
    },
    end: () => pool.end(),
  };
}

/** mysql2's identifier escaping (backticks doubled), for database names in DDL. */
export function escapeId(name: string): string {
  return '`' + name.replace(/`/g, '``') + '`';
}
