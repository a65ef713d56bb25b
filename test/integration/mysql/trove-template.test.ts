// Trove 18's own mysql (and mariadb) config.template, rendered by Trove's own code
// (trove.common.template.SingleInstanceConfigTemplate, as the taskmanager renders
// it for a flavour) and sent as prepare's config_contents: the server it names
// starts, on MariaDB (the server cloudinit/mysql.cloudinit installs on a Debian
// image: it has no secure_file_priv = NULL) and on MySQL 9.7 (which has none of
// the template's redo log options nor default_authentication_plugin), and where
// the template's !includedir /etc/mysql/conf.d/ is missing.
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { createMariadbDatastore } from '../../../datastores/mariadb/index.ts';
import { createMysqlDatastore } from '../../../datastores/mysql/index.ts';
import { connectSql } from '../../../datastores/mysql/sql.ts';
import { startTestAgent } from '../harness/agent.ts';
import { freePort } from '../harness/ports.ts';
import { PythonCaller, PythonConductor, resultOf as ok } from '../harness/python-peer.ts';
import { troveConfigTemplate } from '../harness/trove-config.ts';

const rabbit = inject('rabbit');
const mysqld = join(process.env['GA_MYSQL_DIR'] ?? '/var/cache/guestagent-mysql', 'bin', 'mysqld');

const servers = [
  { manager: 'mysql', name: 'MariaDB 10.11', version: '10.11', extraConf: '', present: true, factory: createMysqlDatastore },
  { manager: 'mysql', name: 'MySQL 9.7', version: '9.7', extraConf: `[mysql]\nserver_binary = ${mysqld}\nclient_bin_dir = ${dirname(mysqld)}\n`, present: existsSync(mysqld), factory: createMysqlDatastore },
  // Trove's mariadb template has the same innodb_log_files_in_group, and query cache options MariaDB still has.
  { manager: 'mariadb', name: 'MariaDB 10.11', version: '10.11', extraConf: '', present: true, factory: createMariadbDatastore },
];

describe.each(servers)("Trove 18's $manager config.template on $name", ({ manager, version, extraConf, present, factory }) => {
  it.skipIf(!present)('prepare with it starts a healthy server with the flavour\'s settings; the options the server no longer has are written loose_', async () => {
    const config = troveConfigTemplate(manager, 1024, version);
    if (manager === 'mysql') expect(config).toMatch(/^default_authentication_plugin = mysql_native_password$/m);
    expect(config).toMatch(/^innodb_log_files_in_group = 2$/m);
    const guestId = randomUUID();
    const queue = `trove-conductor-${randomUUID()}`;
    const key = 'tmpl-' + randomUUID();
    const [caller, conductor] = await Promise.all([
      PythonCaller.start({ url: rabbit.url, guestId, key }),
      PythonConductor.start({ url: rabbit.url, keys: { [guestId]: key }, queue }),
    ]);
    const ta = await startTestAgent({ conductorQueue: queue, transportUrl: rabbit.url, guestId, key, datastorePort: await freePort(), reportInterval: 2, factory, manager, extraConf, datastoreVersion: version });
    try {
      ok(await caller.api('prepare', {
        memory_mb: 1024, packages: '', databases: [{ _name: 'app' }], users: [], device_path: null, mount_point: '/var/lib/mysql', config_contents: config, root_password: null, overrides: {}, ds_version: version,
      }, { notification: true }));
      await conductor.waitHealthy(guestId, 120_000, () => ta.logTail());
      const written = readFileSync(`${ta.stateDir}/${manager}/my.cnf`, 'utf8');
      if (manager === 'mysql') expect(written).toMatch(/^loose_default_authentication_plugin = mysql_native_password$/m);
      expect(written).toMatch(/^loose_innodb_log_files_in_group = 2$/m);
      const db = connectSql({ socketPath: `${ta.stateDir}/${manager}/run/mysqld.sock`, user: 'os_admin', password: /password = (.*)/.exec(readFileSync(`${ta.stateDir}/${manager}/os_admin.cnf`, 'utf8'))![1]! });
      try {
        // The flavour's numbers from the template: 1024 MB of RAM, twice the 512 MB base.
        const [v] = await db.query<Record<string, string | number>>('SELECT @@max_connections AS mc, @@innodb_buffer_pool_size AS bp, @@default_storage_engine AS se, @@local_infile AS li');
        expect({ mc: Number(v!['mc']), se: v!['se'], li: Number(v!['li']) }).toEqual({ mc: 200, se: 'InnoDB', li: 0 });
        // 300M, rounded up by MySQL to whole buffer pool chunks (128M).
        expect(Number(v!['bp'])).toBeGreaterThanOrEqual(300 * 2 ** 20);
        expect(Number(v!['bp'])).toBeLessThanOrEqual(384 * 2 ** 20);
        // File import and export stay off, as the mysql template's secure-file-priv = NULL asks (the mariadb one does not set it).
        if (manager === 'mysql') {
          await expect(db.query("SELECT 1 INTO OUTFILE '/tmp/ga-template-outfile'")).rejects.toThrow(/secure-file-priv|secure_file_priv|Errcode|Permission|Can't create/i);
          expect(existsSync('/tmp/ga-template-outfile')).toBe(false);
        }
      } finally {
        await db.end();
      }
      // (Trove's [mariadb] ignore_dbs leaves out sys, so Trove lists MariaDB's sys there, as the agent does.)
      const [dbs] = ok(await caller.api('list_databases')) as [Array<{ _name: string }>];
      expect(dbs.map((d) => d._name).filter((n) => n !== 'sys')).toEqual(['app']);
    } finally {
      await ta.agent.stop();
      await Promise.all([caller.close(), conductor.close()]);
    }
  }, 180_000);
});
