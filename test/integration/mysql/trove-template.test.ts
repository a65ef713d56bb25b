// Trove 18's own mysql config.template, rendered by Trove's own code
// (trove.common.template.SingleInstanceConfigTemplate, as the taskmanager renders
// it for a flavour) and sent as prepare's config_contents: the server it names
// starts, on MariaDB (the server cloudinit/mysql.cloudinit installs on a Debian
// image) and on MySQL 9.7, though the template sets options neither has any more.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { createMysqlDatastore } from '../../../datastores/mysql/index.ts';
import { connectSql } from '../../../datastores/mysql/sql.ts';
import { startTestAgent } from '../harness/agent.ts';
import { freePort } from '../harness/ports.ts';
import { PythonCaller, PythonConductor, resultOf as ok } from '../harness/python-peer.ts';

const rabbit = inject('rabbit');
const mysqld = join(process.env['GA_MYSQL_DIR'] ?? '/var/cache/guestagent-mysql', 'bin', 'mysqld');

/** Trove's rendering of its mysql datastore's config.template for a flavour of `ramMb`. */
function troveConfig(ramMb: number, version: string): string {
  const script = [
    'import sys',
    'from types import SimpleNamespace',
    'from trove.common import template',
    "dv = SimpleNamespace(datastore_name='mysql', manager='mysql', name=sys.argv[2])",
    "sys.stdout.write(template.SingleInstanceConfigTemplate(dv, {'ram': int(sys.argv[1])}, sys.argv[3]).render())",
  ].join('\n');
  return execFileSync('/usr/bin/python3', ['-c', script, String(ramMb), version, randomUUID()], { encoding: 'utf8' });
}

const servers = [
  { name: 'MariaDB 10.11', version: '10.11', extraConf: '', present: true },
  { name: 'MySQL 9.7', version: '9.7', extraConf: `[mysql]\nserver_binary = ${mysqld}\nclient_bin_dir = ${dirname(mysqld)}\n`, present: existsSync(mysqld) },
];

describe.each(servers)("Trove 18's mysql config.template on $name", ({ version, extraConf, present }) => {
  it.skipIf(!present)('prepare with it starts a healthy server with the flavour\'s settings; the options the server no longer has are written loose_', async () => {
    const config = troveConfig(1024, version);
    expect(config).toMatch(/^default_authentication_plugin = mysql_native_password$/m);
    expect(config).toMatch(/^innodb_log_files_in_group = 2$/m);
    const guestId = randomUUID();
    const queue = `trove-conductor-${randomUUID()}`;
    const key = 'tmpl-' + randomUUID();
    const [caller, conductor] = await Promise.all([
      PythonCaller.start({ url: rabbit.url, guestId, key }),
      PythonConductor.start({ url: rabbit.url, keys: { [guestId]: key }, queue }),
    ]);
    const ta = await startTestAgent({ conductorQueue: queue, transportUrl: rabbit.url, guestId, key, datastorePort: await freePort(), reportInterval: 2, factory: createMysqlDatastore, extraConf, datastoreVersion: version });
    try {
      ok(await caller.api('prepare', {
        memory_mb: 1024, packages: '', databases: [{ _name: 'app' }], users: [], device_path: null, mount_point: '/var/lib/mysql', config_contents: config, root_password: null, overrides: {}, ds_version: version,
      }, { notification: true }));
      await conductor.waitHealthy(guestId, 120_000, () => ta.logTail());
      const written = readFileSync(`${ta.stateDir}/mysql/my.cnf`, 'utf8');
      expect(written).toMatch(/^loose_default_authentication_plugin = mysql_native_password$/m);
      expect(written).toMatch(/^loose_innodb_log_files_in_group = 2$/m);
      const db = connectSql({ socketPath: `${ta.stateDir}/mysql/run/mysqld.sock`, user: 'os_admin', password: /password = (.*)/.exec(readFileSync(`${ta.stateDir}/mysql/os_admin.cnf`, 'utf8'))![1]! });
      try {
        // The flavour's numbers from the template: 1024 MB of RAM, twice the 512 MB base.
        const [v] = await db.query<Record<string, string | number>>('SELECT @@max_connections AS mc, @@innodb_buffer_pool_size AS bp, @@default_storage_engine AS se, @@local_infile AS li');
        expect({ mc: Number(v!['mc']), se: v!['se'], li: Number(v!['li']) }).toEqual({ mc: 200, se: 'InnoDB', li: 0 });
        // 300M, rounded up by MySQL to whole buffer pool chunks (128M).
        expect(Number(v!['bp'])).toBeGreaterThanOrEqual(300 * 2 ** 20);
        expect(Number(v!['bp'])).toBeLessThanOrEqual(384 * 2 ** 20);
        // File import and export stay off, as the template's secure-file-priv = NULL asks.
        await expect(db.query("SELECT 1 INTO OUTFILE '/tmp/ga-template-outfile'")).rejects.toThrow(/secure-file-priv|secure_file_priv|Errcode|Permission|Can't create/i);
        expect(existsSync('/tmp/ga-template-outfile')).toBe(false);
      } finally {
        await db.end();
      }
      expect(ok(await caller.api('list_databases'))).toEqual([[{ _name: 'app', _character_set: expect.any(String), _collate: expect.any(String) }], null]);
    } finally {
      await ta.agent.stop();
      await Promise.all([caller.close(), conductor.close()]);
    }
  }, 180_000);
});
