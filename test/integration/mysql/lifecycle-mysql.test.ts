// The same life against Oracle's MySQL: Debian unstable's mysql-server-core, unpacked with its
// libraries by scripts/fetch-mysql.sh (install-deps.sh runs it); the agent is pointed at it
// through [mysql] server_binary (and its client programs, for logical backups, through client_bin_dir). Without it (no network to Debian), the suite skips and says why.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'vitest';
import { defineLifecycleSuite } from './lifecycle.suite.ts';

const binary = join(process.env['GA_MYSQL_DIR'] ?? '/var/cache/guestagent-mysql', 'bin', 'mysqld');

if (existsSync(binary)) {
  const version = /Ver\s+(\d+\.\d+)/.exec(execFileSync(binary, ['--version'], { encoding: 'utf8' }))![1]!;
  defineLifecycleSuite({ flavor: 'mysql', binary, dsVersion: version, extraConf: `[mysql]\nserver_binary = ${binary}\nclient_bin_dir = ${dirname(binary)}\n` });
} else {
  describe('MySQL lifecycle', () => {
    it.skip(`needs a MySQL server at ${binary} (scripts/fetch-mysql.sh)`, () => {});
  });
}
