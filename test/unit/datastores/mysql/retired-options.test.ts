// What Trove's templates hold that a server here would refuse to start with: options today's
// servers no longer have (written loose_), includes of paths that are not there (commented out).
import { describe, expect, it } from 'vitest';
import { dropMissingInclude, looseRetired, mariadbFilePriv } from '../../../../datastores/mysql/server.ts';

describe('looseRetired', () => {
  it('prefixes the retired options, dashes or underscores, with or without a value', () => {
    expect(looseRetired('default_authentication_plugin = mysql_native_password')).toBe('loose_default_authentication_plugin = mysql_native_password');
    expect(looseRetired('innodb_log_file_size=50M')).toBe('loose_innodb_log_file_size=50M');
    expect(looseRetired('  relay-log-info-repository = TABLE')).toBe('  loose_relay-log-info-repository = TABLE');
    expect(looseRetired('innodb_large_prefix')).toBe('loose_innodb_large_prefix');
  });
  it('leaves everything else as it is', () => {
    for (const line of ['max_connections = 100', '[mysqld]', '# default_authentication_plugin = x', '!includedir /etc/mysql/conf.d/', 'loose_innodb_log_file_size = 1M', '', 'innodb_log_file_size_x = 1']) {
      expect(looseRetired(line)).toBe(line);
    }
  });
});

describe('dropMissingInclude', () => {
  const exists = (p: string) => p === '/etc/mysql/mariadb.conf.d/';
  it('comments out an include of a path that is not there, and only that', () => {
    expect(dropMissingInclude('!includedir /etc/mysql/conf.d/', exists)).toBe('# guestagent: /etc/mysql/conf.d/ does not exist here, not included: !includedir /etc/mysql/conf.d/');
    expect(dropMissingInclude('!include /etc/my.extra.cnf', exists)).toMatch(/^# guestagent: \/etc\/my.extra.cnf does not exist here/);
    expect(dropMissingInclude('!includedir /etc/mysql/mariadb.conf.d/', exists)).toBe('!includedir /etc/mysql/mariadb.conf.d/');
    expect(dropMissingInclude('max_connections = 5', exists)).toBe('max_connections = 5');
  });
});

describe('mariadbFilePriv', () => {
  it("turns MySQL's secure_file_priv = NULL into an empty directory for MariaDB, and nothing else", () => {
    expect(mariadbFilePriv('secure-file-priv = NULL', '/v/no-file-io')).toBe('secure_file_priv = /v/no-file-io');
    expect(mariadbFilePriv("secure_file_priv='null'", '/v/no-file-io')).toBe('secure_file_priv = /v/no-file-io');
    expect(mariadbFilePriv('secure_file_priv = /var/lib/mysql-files', '/v/no-file-io')).toBe('secure_file_priv = /var/lib/mysql-files');
    expect(mariadbFilePriv('max_connections = 5', '/v/no-file-io')).toBe('max_connections = 5');
  });
});
