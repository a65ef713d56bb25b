// Trove's MysqlGTIDReplication against Oracle's MySQL (Debian unstable's, from
// scripts/fetch-mysql.sh; logical snapshots). Without it, the suite skips and says why.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'vitest';
import { defineReplicationSuite } from './replication.suite.ts';

const binary = join(process.env['GA_MYSQL_DIR'] ?? '/var/cache/guestagent-mysql', 'bin', 'mysqld');

if (existsSync(binary)) {
  const version = /Ver\s+(\d+\.\d+)/.exec(execFileSync(binary, ['--version'], { encoding: 'utf8' }))![1]!;
  defineReplicationSuite({ manager: 'mysql', dsVersion: version, extraConf: `[mysql]\nserver_binary = ${binary}\nclient_bin_dir = ${dirname(binary)}\n` });
} else {
  describe('MySQL replication', () => {
    it.skip(`needs a MySQL server at ${binary} (scripts/fetch-mysql.sh)`, () => {});
  });
}
