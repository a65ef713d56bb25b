import { describe, expect, it } from 'vitest';
import { validateDatabaseName, validateHost, validatePassword, validateUserName } from '../../../../datastores/mysql/names.ts';
import { renderOverrides } from '../../../../datastores/mysql/server.ts';

describe("Trove's MySQL name rules", () => {
  it.each(['app', 'a-b_c', 'my db', 'x?y', 'a#b', 'a@b', 'A1'])('accepts database %s', (n) => expect(validateDatabaseName(n)).toBe(n));
  it.each(['a', 'a;DROP', 'x`y', "q'x", 'a'.repeat(65), 'ünï', '../etc', ' a', 'a b ', 'tab\tx', 'new\nline'])('refuses database %j', (n) => {
    expect(() => validateDatabaseName(n)).toThrow(/not a valid schema name|too long/);
  });
  it('users: Trove limits and forbidden characters', () => {
    expect(validateUserName('bob')).toBe('bob');
    expect(() => validateUserName('a'.repeat(17))).toThrow(/too long/);
    for (const bad of ['', ' bob', 'bob ', "o'neil", 'a"b', 'a;b', 'a`b', 'a,b', 'a/b', 'a\\b']) expect(() => validateUserName(bad)).toThrow(/not a valid user name/);
  });
  it('passwords: refused without echoing the password', () => {
    expect(validatePassword('päss wörd#1!')).toBe('päss wörd#1!');
    try {
      validatePassword("sec'ret");
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).not.toContain('sec');
    }
  });
  it('hosts: % anywhere, IP networks with % wildcards, nothing else', () => {
    for (const ok of [null, '%', '10.0.%.%', '192.168.1.0/255.255.255.0', '127.0.0.1', '::1', '10.%']) expect(() => validateHost(ok)).not.toThrow();
    for (const bad of ['example.com', "a'b", '1.2.3.4/99', '1.2.3.4/1/2', 'localhost']) expect(() => validateHost(bad)).toThrow(/not a valid hostname/);
  });
});

describe('overrides file', () => {
  it('renders values and refuses anything that could break out of a line', () => {
    expect(renderOverrides({ max_connections: 10, 'innodb.flag': true, sql_mode: 'STRICT_ALL_TABLES' })).toBe(
      '[mysqld]\nmax_connections = 10\ninnodb.flag = 1\nsql_mode = STRICT_ALL_TABLES\n',
    );
    expect(() => renderOverrides({ 'a\nb': 1 })).toThrow(/not a valid configuration option/);
    expect(() => renderOverrides({ x: 'a\n[client]' })).toThrow(/single-line/);
    expect(() => renderOverrides({ x: { y: 1 } })).toThrow();
  });
});
