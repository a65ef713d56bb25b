import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { settingFromConf } from '../../../datastores/postgresql/conf-file.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ga-pgconf-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));
const put = (name: string, text: string) => {
  mkdirSync(join(dir, name, '..'), { recursive: true });
  writeFileSync(join(dir, name), text);
};

describe('settingFromConf: a postgresql.conf read in PostgreSQL\'s order', () => {
  it('the last assignment wins, in each of the syntaxes the server accepts', () => {
    put('a.conf', "port = 5432\n# port = 1\nport 5433   # trailing comment\n");
    expect(settingFromConf(join(dir, 'a.conf'), 'port')).toBe('5433');
    put('b.conf', "PORT='5434'\nlisten_addresses = '127.0.0.1'\n");
    expect(settingFromConf(join(dir, 'b.conf'), 'port')).toBe('5434');
    expect(settingFromConf(join(dir, 'b.conf'), 'listen_addresses')).toBe('127.0.0.1');
    put('c.conf', "archive_command = 'test ! -f ''x'' && cp %p \\'y'  # quoted\n");
    expect(settingFromConf(join(dir, 'c.conf'), 'archive_command')).toBe("test ! -f 'x' && cp %p 'y");
    expect(settingFromConf(join(dir, 'c.conf'), 'port')).toBeNull();
  });

  it('reads an include_dir where it stands: its .conf files in byte order, hidden and other files skipped', () => {
    // Trove's template: the operator's files in /etc/postgresql/conf.d, then the agent's overrides.
    put('data/postgresql.conf', "port = 5432\ninclude_dir = '../conf.d'\ninclude_if_exists 'overrides.conf'\n");
    put('conf.d/20-b.conf', 'port = 6001\n');
    put('conf.d/10-a.conf', 'port = 6000\n');
    put('conf.d/.99-hidden.conf', 'port = 1\n');
    put('conf.d/30-c.conf.bak', 'port = 2\n');
    put('conf.d/Z.conf', 'port = 6003\n');
    put('conf.d/a.conf', 'port = 6004\n'); // 'a' > 'Z' in byte order: read last
    expect(settingFromConf(join(dir, 'data/postgresql.conf'), 'port')).toBe('6004');
    put('data/overrides.conf', "port = '7000'\n");
    expect(settingFromConf(join(dir, 'data/postgresql.conf'), 'port')).toBe('7000');
  });

  it('a later line overrides an include; nested includes resolve against their own directory', () => {
    put('main.conf', `include '${join(dir, 'sub/one.conf')}'\n`);
    put('sub/one.conf', "include 'two.conf'\nport = 5500\n");
    put('sub/two.conf', 'port = 5501\nmax_connections = 7\n');
    expect(settingFromConf(join(dir, 'main.conf'), 'port')).toBe('5500');
    expect(settingFromConf(join(dir, 'main.conf'), 'max_connections')).toBe('7');
  });

  it('stops at a missing file, an include loop and a missing directory', () => {
    put('loop.conf', "port = 5600\ninclude 'loop.conf'\ninclude_dir 'nowhere'\ninclude 'missing.conf'\n");
    expect(settingFromConf(join(dir, 'loop.conf'), 'port')).toBe('5600');
    expect(settingFromConf(join(dir, 'absent.conf'), 'port')).toBeNull();
  });
});
