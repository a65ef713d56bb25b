import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { serverFlavor } from '../../../../datastores/mysql/index.ts';

describe('serverFlavor', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ga-flavor-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'mariadbd'), '');
  writeFileSync(join(dir, 'wrapper'), '');
  symlinkSync(join(dir, 'mariadbd'), join(dir, 'mysqld'));
  symlinkSync(join(dir, 'wrapper'), join(dir, 'mysqld-oracle'));

  it('MariaDB by its program, also through the mysqld link Debian installs', () => {
    expect(serverFlavor(join(dir, 'mariadbd'))).toBe('mariadb');
    expect(serverFlavor(join(dir, 'mysqld'))).toBe('mariadb');
  });

  it('MySQL for any other program, a missing one by its name', () => {
    expect(serverFlavor(join(dir, 'mysqld-oracle'))).toBe('mysql');
    expect(serverFlavor('/nonexistent/mysqld')).toBe('mysql');
    expect(serverFlavor('/nonexistent/mariadbd')).toBe('mariadb');
  });
});
