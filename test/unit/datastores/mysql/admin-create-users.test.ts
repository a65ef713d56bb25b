// createUsers makes users a chunk per statement, yet must leave what Trove's
// one-by-one loop leaves when a user fails: those before it made and granted,
// it and those after it not made. A fake server with MariaDB's multi-user
// CREATE USER behaviour (the others are made, one error for the failed ones)
// drives the paths no real server here can fail on demand.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createMysqlAdmin } from '../../../../datastores/mysql/admin.ts';
import type { SqlClient } from '../../../../datastores/mysql/sql.ts';
import type { User } from '../../../../src/datastore.ts';

const ctx = { log: pino({ level: 'silent' }), signal: new AbortController().signal };

/** Users as name@host → granted databases; a password 'Rejected-1' fails as a password policy plugin would. */
function fakeServer(existing: string[] = []) {
  const users = new Map<string, string[]>(existing.map((u) => [u, []]));
  const statements: string[] = [];
  const pairs = (params: unknown[]) => Array.from({ length: params.length / 2 }, (_, i) => `${params[2 * i]}@${String(params[2 * i + 1]).toLowerCase()}`);
  const sql: SqlClient = {
    async query<T>(text: string, params: unknown[] = []): Promise<T[]> {
      statements.push(text.split(' ').slice(0, 2).join(' '));
      if (text.startsWith('SELECT 1 FROM mysql.user')) return (pairs(params).some((u) => users.has(u)) ? [{ 1: 1 }] : []) as T[];
      if (text.startsWith('SELECT User, Host FROM mysql.user')) {
        return pairs(params).filter((u) => users.has(u)).map((u) => ({ User: u.split('@')[0], Host: u.split('@')[1] })) as T[];
      }
      if (text.startsWith('CREATE USER')) {
        const failed: string[] = [];
        for (let i = 0; i < params.length; i += 3) {
          const key = `${params[i]}@${params[i + 1]}`;
          if (users.has(key) || params[i + 2] === 'Rejected-1') failed.push(key);
          else users.set(key, []);
        }
        if (failed.length) throw Object.assign(new Error(`Operation CREATE USER failed for ${failed.join(',')}`), { code: 'ER_CANNOT_USER' });
        return [];
      }
      if (text.startsWith('GRANT ALL PRIVILEGES ON ')) {
        const db = /ON `([^`]+)`/.exec(text)![1]!;
        for (const u of pairs(params)) users.get(u)!.push(db);
        return [];
      }
      if (text.startsWith('DROP USER')) {
        for (const u of pairs(params)) users.delete(u);
        return [];
      }
      throw new Error(`unexpected SQL: ${text}`);
    },
    end: async () => {},
  };
  return { users, statements, admin: createMysqlAdmin({ sql: () => sql, ignoreUsers: ['os_admin'], ignoreDbs: ['mysql'] }) };
}
const user = (name: string, password = 'Pw-1', databases = ['app']): User => ({ name, host: '%', password, databases });

describe('createUsers', () => {
  it('makes a chunk in one CREATE USER and one GRANT per database', async () => {
    const s = fakeServer();
    await s.admin.createUsers([user('a'), user('b', 'Pw-2', ['app', 'other']), user('c', 'Pw-3', [])], ctx);
    expect(Object.fromEntries(s.users)).toEqual({ 'a@%': ['app'], 'b@%': ['app', 'other'], 'c@%': [] });
    expect(s.statements).toEqual(['SELECT 1', 'CREATE USER', 'GRANT ALL', 'GRANT ALL']);
  });

  it('stops at a user that exists, as Trove does: those before it made and granted, those after it not', async () => {
    const s = fakeServer(['b@%']);
    await expect(s.admin.createUsers([user('a'), user('b'), user('c')], ctx)).rejects.toMatchObject({ code: 'ER_CANNOT_USER' });
    expect(Object.fromEntries(s.users)).toEqual({ 'a@%': ['app'], 'b@%': [] });
  });

  it('stops at the second of a repeated user', async () => {
    const s = fakeServer();
    await expect(s.admin.createUsers([user('a'), user('a', 'Pw-2'), user('c')], ctx)).rejects.toThrow(/CREATE USER failed for a@%/);
    expect(Object.fromEntries(s.users)).toEqual({ 'a@%': ['app'] });
  });

  it('when the chunk statement fails, undoes what it made and replays one by one to the same stop', async () => {
    const s = fakeServer();
    await expect(s.admin.createUsers([user('a'), user('b', 'Rejected-1'), user('c')], ctx)).rejects.toThrow(/CREATE USER failed for b@%$/);
    expect(Object.fromEntries(s.users)).toEqual({ 'a@%': ['app'] });
    expect(s.statements).toEqual(['SELECT 1', 'CREATE USER', 'SELECT User,', 'DROP USER', 'CREATE USER', 'GRANT ALL', 'CREATE USER']);
  });

  it('validates every user before any SQL', async () => {
    const s = fakeServer();
    await expect(s.admin.createUsers([user('a'), user("b'--")], ctx)).rejects.toThrow(/not a valid user name/);
    expect(s.statements).toEqual([]);
  });
});
