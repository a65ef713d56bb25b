/**
 * A real boot, end to end (issue 7): a Debian bookworm guest root built with
 * debootstrap (cached under /var/cache/guestagent-boot), our cloud-init
 * template for the datastore (mariadb by default, or mysql on MariaDB's
 * packages, mysql-oracle on a Debian unstable image that ships Oracle's MySQL,
 * postgresql, redis: `npm run test:boot -- postgresql`) plus what
 * Trove 18's prepare_cloud_config appends (the injected guest_info.conf and
 * trove-guestagent.conf) as a NoCloud seed, booted with systemd as PID 1
 * under systemd-nspawn on the host's network. cloud-init installs the
 * datastore's packages and the agent's release tarball (served from the
 * host) and starts the unit; on the host, a private RabbitMQ, Trove's
 * Python conductor and Trove's Python guest API client then see: the agent
 * answer, prepare reach `healthy`, and create_database (create_user for
 * Redis) land in the guest's server, on the mount point's data directory;
 * then restart, full and incremental backups, a restore and a rebuild, and
 * for MariaDB (both managers), Oracle's MySQL and PostgreSQL Trove's replica create with the
 * guest as the replica of a source on the host, and detach_replica.
 * The guest shares the host's network: its server listens on 127.0.0.1 at a
 * port of its own (20000-29999, free at the start), never on the host's
 * 3306 / 5432 / 6379. Not part of `npm test` (it needs minutes and Debian's
 * mirrors): `npm run test:boot`. Root only. Prints PASS or FAIL and the duration.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../integration/harness/ports.ts';
import { PythonCaller, PythonConductor, resultOf as ok } from '../integration/harness/python-peer.ts';
import { troveConfigTemplate } from '../integration/harness/trove-config.ts';
import { startRabbitNode } from '../integration/setup/rabbit.ts';
import { startSwift } from '../integration/setup/swift.ts';
import { createSwiftClient } from '../../src/backup/swift-client.ts';
import { pino } from 'pino';
import pg from 'pg';
import type { Datastore, PrepareRequest } from '../../src/datastore.ts';
import { createPostgresDatastore } from '../../datastores/postgresql/index.ts';
import { createMysql } from '../../datastores/mysql/index.ts';
import { connectSql } from '../../datastores/mysql/sql.ts';
import { measureBackup } from '../../bench/backup-common.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CACHE = '/var/cache/guestagent-boot';
// python3-cffi-backend: debootstrap does not resolve the virtual python3-cffi-backend-api-max that cloud-init's python3-cryptography needs.
const PACKAGES = 'systemd,systemd-sysv,dbus,cloud-init,python3-cffi-backend,ca-certificates,curl,iproute2,python3-jsonschema,e2fsprogs';

/** What differs between datastores: the package's own start kept off the host's ports, prepare, and what the guest must show. */
interface Variant {
  manager: string;
  /** The guest image when it is not bookworm with the datastore left to cloud-init: a suite and what it ships preinstalled. */
  image?: { suite: string; packages: string };
  version: string;
  /** The distribution's unit the agent drives (its journal is shown on failure). */
  unit: string;
  mountPoint: string;
  /** Written into the guest root before boot, for the package's own start at install. */
  preBoot(root: string): void;
  prepare: { databases: unknown[]; users: unknown[]; config_contents: string };
  /** After prepare reached healthy: the API call(s) and what the guest itself shows; returns a line to print. */
  check(api: (method: string, args: Record<string, unknown>) => Promise<unknown>, guest: (cmd: string[], mayFail?: boolean) => string, root: string): Promise<string>;
  /** A blank volume for the restore: what `sh -c` removes under the mount point. */
  wipe: string;
  /**
   * Trove offers incremental backups for this datastore: a database created after the full backup
   * goes into an incremental on top of it, and the restore is from the incremental (the chain).
   */
  incremental: boolean;
  /** Trove's replication for this datastore is built: the guest becomes a replica of a source on the host. */
  replication?: ReplicationVariant;
  /** After prepare(backup_info) reached healthy: what the guest shows of the restored data (`expect`: databases it must hold); returns a line to print. */
  restored(guest: (cmd: string[], mayFail?: boolean) => string, root: string, expect: string[]): Promise<string>;
}

/** A source the host runs (the agent's own datastore code, its server self-run on 127.0.0.1) and how the guest is checked as its replica. */
interface HostSource {
  ds: Datastore;
  sql(q: string): Promise<void>;
  /** os_admin's password: the replica has the source's roles. */
  adminPassword: string;
  close(): Promise<void>;
}
interface ReplicationVariant {
  strategy: string;
  templates: string;
  source(dir: string, port: number): Promise<HostSource>;
  /** One query in the guest's server through its own client, rows as lines. */
  guestSql(guest: (cmd: string[], mayFail?: boolean) => string, sql: string, adminPassword: string, mayFail?: boolean): string;
  /** The guest replicates (a line to print) or throws. */
  isReplica(guestSql: (sql: string) => string, guest: (cmd: string[], mayFail?: boolean) => string): string;
  /** After detach_replica: the guest is on its own and writable, or throws. */
  isDetached(guestSql: (sql: string) => string, guest: (cmd: string[], mayFail?: boolean) => string): void;
}

const silentCtx = () => ({ log: pino({ level: 'silent' }), signal: new AbortController().signal });
const prepareReq = (config: string, version: string): PrepareRequest => ({
  memoryMb: 0, packages: [], databases: [{ name: 'replicated' }], users: [], devicePath: null, mountPoint: null, backupInfo: null,
  configContents: config, rootPassword: null, overrides: null, clusterConfig: null, snapshot: null, modules: null, dsVersion: version,
});

function mariadbReplication(manager: 'mariadb' | 'mysql'): ReplicationVariant {
  return {
    strategy: manager === 'mariadb' ? 'MariaDBGTIDReplication' : 'MysqlGTIDReplication',
    templates: '/usr/lib/python3/dist-packages/trove/templates/mariadb',
    async source(dir, sourcePort) {
      const ds = createMysql({ log: pino({ level: 'silent' }), section: {}, runner: 'process', stateDir: dir, port: sourcePort, events: {} }, manager);
      await ds.lifecycle.prepare(prepareReq('[mysqld]\nserver_id = 99\ninnodb_buffer_pool_size = 64M\n', '10.11'), silentCtx());
      const adminPassword = /password = (.*)/.exec(readFileSync(join(dir, 'os_admin.cnf'), 'utf8'))![1]!;
      const sql = connectSql({ socketPath: join(dir, 'run', 'mysqld.sock'), user: 'os_admin', password: adminPassword });
      return { ds, adminPassword, sql: async (q) => void (await sql.query(q)), close: () => sql.end() };
    },
    guestSql: (guest, q, _pw, mayFail) => guest(['/usr/bin/mariadb', '-N', '-e', q], mayFail).trim(),
    isReplica(sql, guest) {
      const st = guest(['/usr/bin/mariadb', '-e', 'SHOW SLAVE STATUS\\G']);
      if (!/Slave_IO_Running: Yes/.test(st) || !/Slave_SQL_Running: Yes/.test(st) || !/Using_Gtid: Slave_Pos/.test(st)) throw new Error(`the guest does not replicate:\n${st}`);
      const ro = sql('SELECT @@read_only, @@log_bin_basename');
      if (ro !== '1\t/var/lib/mysql/data/mariadb-bin') throw new Error(`the replica's read_only and binary log are ${JSON.stringify(ro)}`);
      return `by GTID, read-only, binary log ${ro.split('\t')[1]}`;
    },
    isDetached(sql, guest) {
      const ro = sql('SELECT @@read_only');
      const left = guest(['/usr/bin/mariadb', '-e', 'SHOW SLAVE STATUS']).trim();
      if (ro !== '0' || left !== '') throw new Error(`after detach_replica the guest is read_only=${ro} and still has a source: ${left}`);
    },
  };
}

function postgresqlReplication(port: number): ReplicationVariant {
  return {
    strategy: 'PostgresqlReplicationStreaming',
    templates: '/usr/lib/python3/dist-packages/trove/templates/postgresql',
    async source(dir, sourcePort) {
      // The self-run postgres must get through the state dir.
      chmodSync(dir, 0o711);
      const ds = createPostgresDatastore({ log: pino({ level: 'silent' }), section: {}, runner: 'process', stateDir: dir, port: sourcePort, events: {} });
      await ds.lifecycle.prepare(prepareReq("max_connections = 100\nshared_buffers = '32MB'\nwal_log_hints = on\n", '15'), silentCtx());
      const adminPassword = readFileSync(join(dir, 'os_admin.pass'), 'utf8').trim();
      const sql = async (q: string) => {
        const c = new pg.Client({ host: join(dir, 'run'), port: sourcePort, user: 'os_admin', password: adminPassword, database: 'replicated' });
        await c.connect();
        try {
          await c.query(q);
        } finally {
          await c.end();
        }
      };
      return { ds, adminPassword, sql, close: async () => {} };
    },
    // As root: on a replica the agent's system user (root) logs in as os_admin by peer authentication.
    guestSql: (guest, q, pw, mayFail) =>
      guest(['/usr/bin/env', `PGPASSWORD=${pw}`, '/usr/bin/psql', '-h', '/var/run/postgresql', '-p', String(port), '-U', 'os_admin', '-d', 'replicated', '-Atc', q], mayFail).trim(),
    isReplica(sql) {
      const r = sql("SELECT pg_is_in_recovery(), status FROM pg_stat_wal_receiver");
      if (r !== 't|streaming') throw new Error(`the guest is not a streaming standby: ${JSON.stringify(r)}`);
      return 'as a hot standby streaming from the source';
    },
    isDetached(sql) {
      const r = sql('SELECT pg_is_in_recovery()');
      if (r !== 'f') throw new Error(`after detach_replica the guest is still in recovery: ${r}`);
    },
  };
}

/**
 * The guest shares the host's network: its server listens on 127.0.0.1 at a port of its own, drawn
 * from 20000-29999 (never the host's 3306 / 5432 / 6379) and free when the run starts, so that runs
 * of this test side by side (from another worktree, say) do not meet on one port.
 */
async function guestPort(): Promise<number> {
  const free = (port: number) =>
    new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
  for (let i = 0; i < 50; i++) {
    const port = 20000 + Math.floor(Math.random() * 10000);
    if (await free(port)) return port;
  }
  throw new Error('no free port in 20000-29999 for the guest');
}

/** MariaDB's server, under Trove's mariadb manager or its mysql one (cloudinit/mysql.cloudinit installs MariaDB's packages). */
function mariadbVariant(manager: 'mariadb' | 'mysql', port: number): Variant {
  return {
    manager,
    version: '10.11',
    unit: 'mariadb',
    mountPoint: '/var/lib/mysql',
    preBoot(root) {
      // The package's own start of MariaDB must not collide with the host's 3306.
      mkdirSync(join(root, 'etc/mysql/mariadb.conf.d'), { recursive: true });
      writeFileSync(join(root, 'etc/mysql/mariadb.conf.d/99-boot-port.cnf'), `[mysqld]\nport = ${port}\nbind-address = 127.0.0.1\n`);
    },
    // Trove's own rendering of the manager's template for a 1 GB flavour, then the guest's port (see above).
    prepare: { databases: [{ _name: 'fromprepare' }], users: [], config_contents: `${troveConfigTemplate(manager, 1024, '10.11')}\n[mysqld]\nport = ${port}\nbind-address = 127.0.0.1\n` },
    async check(api, guest) {
      await api('create_database', { databases: [{ _name: 'booted', _character_set: 'utf8mb4', _collate: 'utf8mb4_general_ci' }] });
      // Seen from inside the guest: its own mariadb client over its own socket, in its namespaces.
      const dbs = await until('booted in SHOW DATABASES', 60_000, async () => {
        const out = guest(['/usr/bin/mariadb', '-N', '-e', 'SHOW DATABASES']);
        return out.split('\n').includes('booted') ? out : null;
      });
      const datadir = guest(['/usr/bin/mariadb', '-N', '-e', 'SELECT @@datadir']).trim();
      if (datadir.replace(/\/$/, '') !== '/var/lib/mysql/data') throw new Error(`the guest's server runs on ${datadir}, not the volume's /var/lib/mysql/data`);
      if (!dbs.split('\n').includes('fromprepare')) throw new Error('the database prepare created is missing');
      const listening = guest(['/usr/bin/mariadb', '-N', '-e', 'SELECT @@port']).trim();
      return `guest MariaDB (${manager} manager, port ${listening}) databases: ${dbs.trim().split('\n').join(', ')}`;
    },
    wipe: 'rm -rf /var/lib/mysql/data',
    incremental: true,
    replication: mariadbReplication(manager),
    async restored(guest, _root, expect) {
      const dbs = guest(['/usr/bin/mariadb', '-N', '-e', 'SHOW DATABASES']).split('\n');
      if (!expect.every((d) => dbs.includes(d))) throw new Error(`the restored server lacks the backed-up databases: ${dbs.join(', ')}`);
      return `restored MariaDB databases: ${dbs.filter(Boolean).join(', ')}`;
    },
  };
}

/** The host's Oracle MySQL (scripts/fetch-mysql.sh): the source the guest replicates from. */
const HOST_MYSQL = join(process.env['GA_MYSQL_DIR'] ?? '/var/cache/guestagent-mysql', 'bin');
/** The guest's own client as the agent's os_admin (its option file, whose password a restore renews). */
const guestMysql = (args: string[]) => ['/usr/bin/mysql', '--defaults-extra-file=/var/lib/guestagent/mysql/os_admin.cnf', ...args];

/** Trove's MysqlGTIDReplication from a source on the host (the agent's code running the host's Oracle MySQL). */
function oracleMysqlReplication(): ReplicationVariant {
  return {
    strategy: 'MysqlGTIDReplication',
    templates: '/usr/lib/python3/dist-packages/trove/templates/mysql',
    async source(dir, sourcePort) {
      const section = { server_binary: join(HOST_MYSQL, 'mysqld'), client_bin_dir: HOST_MYSQL };
      const ds = createMysql({ log: pino({ level: 'silent' }), section, runner: 'process', stateDir: dir, port: sourcePort, events: {} }, 'mysql');
      await ds.lifecycle.prepare(prepareReq('[mysqld]\nserver_id = 99\ninnodb_buffer_pool_size = 64M\n', '9.7'), silentCtx());
      const adminPassword = /password = (.*)/.exec(readFileSync(join(dir, 'os_admin.cnf'), 'utf8'))![1]!;
      const sql = connectSql({ socketPath: join(dir, 'run', 'mysqld.sock'), user: 'os_admin', password: adminPassword });
      return { ds, adminPassword, sql: async (q) => void (await sql.query(q)), close: () => sql.end() };
    },
    guestSql: (guest, q, _pw, mayFail) => guest(guestMysql(['-N', '-e', q]), mayFail).trim(),
    isReplica(sql, guest) {
      const st = guest(guestMysql(['--vertical', '-e', 'SHOW REPLICA STATUS']));
      if (!/Replica_IO_Running: Yes/.test(st) || !/Replica_SQL_Running: Yes/.test(st) || !/Auto_Position: 1/.test(st)) throw new Error(`the guest does not replicate:\n${st}`);
      const ro = sql('SELECT @@read_only, @@log_bin_basename, @@gtid_mode');
      if (ro !== '1\t/var/lib/mysql/data/mysql-bin\tON') throw new Error(`the replica's read_only, binary log and GTID mode are ${JSON.stringify(ro)}`);
      return `by GTID auto-position, read-only, binary log ${ro.split('\t')[1]}`;
    },
    isDetached(sql, guest) {
      const ro = sql('SELECT @@read_only');
      const left = guest(guestMysql(['-e', 'SHOW REPLICA STATUS'])).trim();
      if (ro !== '0' || left !== '') throw new Error(`after detach_replica the guest is read_only=${ro} and still has a source: ${left}`);
    },
  };
}

/**
 * An image that ships Oracle's MySQL (Debian unstable's mysql-server; bookworm has none): Trove's
 * mysql manager, cloudinit/mysql.cloudinit keeping the image's server, the agent driving its `mysql` unit.
 */
function oracleMysqlVariant(port: number): Variant {
  // The guest shares the host's network: the server's X protocol stays off (its 33060 is one port for every server).
  const onPort = `[mysqld]\nport = ${port}\nbind-address = 127.0.0.1\nmysqlx = OFF\n`;
  return {
    manager: 'mysql',
    version: '9.7',
    image: { suite: 'sid', packages: 'mysql-server,mysql-client' },
    unit: 'mysql',
    mountPoint: '/var/lib/mysql',
    preBoot(root) {
      // The image's own start of its server (before cloud-init stops it) must not collide with the host's 3306.
      // (Built on this host, the package moved itself to 3307 in a file of its own: ours replaces it.)
      rmSync(join(root, 'etc/mysql/mysql.conf.d/99-port-backoff.cnf'), { force: true });
      mkdirSync(join(root, 'etc/mysql/mysql.conf.d'), { recursive: true });
      writeFileSync(join(root, 'etc/mysql/mysql.conf.d/99-boot-port.cnf'), onPort);
    },
    // Trove's own rendering of the mysql manager's template for a 1 GB flavour, then the guest's port (see above).
    prepare: { databases: [{ _name: 'fromprepare' }], users: [], config_contents: `${troveConfigTemplate('mysql', 1024, '9.7')}\n${onPort}` },
    async check(api, guest) {
      await api('create_database', { databases: [{ _name: 'booted', _character_set: 'utf8mb4', _collate: 'utf8mb4_general_ci' }] });
      const dbs = await until('booted in SHOW DATABASES', 60_000, async () => {
        const out = guest(guestMysql(['-N', '-e', 'SHOW DATABASES']));
        return out.split('\n').includes('booted') ? out : null;
      });
      const [version, datadir, listening] = guest(guestMysql(['-N', '-e', 'SELECT @@version, @@datadir, @@port'])).trim().split('\t');
      if (datadir?.replace(/\/$/, '') !== '/var/lib/mysql/data') throw new Error(`the guest's server runs on ${datadir}, not the volume's /var/lib/mysql/data`);
      if (!dbs.split('\n').includes('fromprepare')) throw new Error('the database prepare created is missing');
      if (/mariadb/i.test(version ?? '')) throw new Error(`the guest runs MariaDB (${version}), not the image's MySQL`);
      const unit = guest(['/usr/bin/systemctl', 'is-active', 'mysql']).trim();
      return `guest MySQL ${version} (mysql ${unit}, port ${listening}, ${datadir}) databases: ${dbs.trim().split('\n').join(', ')}`;
    },
    wipe: 'rm -rf /var/lib/mysql/data',
    incremental: true,
    replication: existsSync(join(HOST_MYSQL, 'mysqld')) ? oracleMysqlReplication() : undefined,
    async restored(guest, _root, expect) {
      const dbs = guest(guestMysql(['-N', '-e', 'SHOW DATABASES'])).split('\n');
      if (!expect.every((d) => dbs.includes(d))) throw new Error(`the restored server lacks the backed-up databases: ${dbs.join(', ')}`);
      return `restored MySQL databases: ${dbs.filter(Boolean).join(', ')}`;
    },
  };
}

const VARIANTS: Record<string, (port: number) => Variant> = {
  mariadb: (port) => mariadbVariant('mariadb', port),
  mysql: (port) => mariadbVariant('mysql', port),
  'mysql-oracle': oracleMysqlVariant,
  postgresql: (port) => ({
    manager: 'postgresql',
    version: '15',
    unit: 'postgresql@15-main',
    mountPoint: '/var/lib/postgresql',
    preBoot(root) {
      // pg_createcluster copies createcluster.conf settings into the package's cluster: its own start stays off the host's 5432
      // (it listens on localhost by default; a quoted value here would reach postgresql.conf unquoted).
      mkdirSync(join(root, 'etc/postgresql-common/createcluster.d'), { recursive: true });
      writeFileSync(join(root, 'etc/postgresql-common/createcluster.d/99-boot-port.conf'), `port = ${port}\n`);
      // The guest's port as an operator sets it for every instance: a file of the template's
      // include_dir, not config_contents. The agent must read it there to find the server's socket.
      mkdirSync(join(root, 'etc/postgresql/conf.d'), { recursive: true });
      writeFileSync(join(root, 'etc/postgresql/conf.d/10-port.conf'), `port = ${port}\n`);
    },
    prepare: {
      databases: [{ _name: 'fromprepare' }],
      users: [],
      // Trove 18's templates/postgresql/config.template rendered for a 1 GB flavour, as an operator
      // adapts it to PostgreSQL 15 (wal_keep_size for the removed wal_keep_segments) and to this
      // image (C.UTF-8 is its one locale), on loopback only (the port comes from its include_dir, above).
      config_contents: [
        `listen_addresses = '127.0.0.1'`, 'max_connections = 100', 'shared_buffers = 102MB', 'max_stack_depth = 7MB',
        'dynamic_shared_memory_type = posix', 'wal_level = replica', 'wal_log_hints = on', 'max_wal_size = 1GB', 'min_wal_size = 80MB', 'archive_mode = on',
        `archive_command = 'test ! -f /var/lib/postgresql/data/wal_archive/%f && cp %p /var/lib/postgresql/data/wal_archive/%f'`,
        `restore_command = 'cp /var/lib/postgresql/data/wal_archive/%f "%p"'`, 'wal_keep_size = 80MB', 'effective_cache_size = 512MB',
        `log_timezone = 'Etc/UTC'`, 'update_process_title = off', `datestyle = 'iso, mdy'`, `timezone = 'Etc/UTC'`, `lc_messages = 'C.UTF-8'`,
        `lc_monetary = 'C.UTF-8'`, `lc_numeric = 'C.UTF-8'`, `lc_time = 'C.UTF-8'`, `default_text_search_config = 'pg_catalog.english'`,
        `include_dir = '/etc/postgresql/conf.d'`, '',
      ].join('\n'),
    },
    async check(api, guest, root) {
      await api('create_database', { databases: [{ _name: 'booted', _character_set: 'UTF8', _collate: null }] });
      // Inside the guest, as its postgres system user, with the agent's os_admin over the guest's own socket.
      const pw = readFileSync(join(root, 'var/lib/guestagent/postgresql/os_admin.pass'), 'utf8').trim();
      const psql = (sql: string) =>
        guest(['/usr/sbin/runuser', '-u', 'postgres', '--', '/usr/bin/env', `PGPASSWORD=${pw}`, '/usr/bin/psql', '-h', '/var/run/postgresql', '-p', String(port), '-U', 'os_admin', '-d', 'postgres', '-Atc', sql]);
      const dbs = await until('booted in pg_database', 60_000, async () => {
        const out = psql('SELECT datname FROM pg_database ORDER BY 1');
        return out.split('\n').includes('booted') ? out : null;
      });
      const datadir = psql('SHOW data_directory').trim();
      if (datadir !== '/var/lib/postgresql/data') throw new Error(`the guest's server runs on ${datadir}, not the volume's /var/lib/postgresql/data`);
      if (!dbs.split('\n').includes('fromprepare')) throw new Error('the database prepare created is missing');
      const unit = guest(['/usr/bin/systemctl', 'is-active', 'postgresql@15-main']).trim();
      return `guest PostgreSQL (postgresql@15-main ${unit}, ${datadir}) databases: ${dbs.trim().split('\n').join(', ')}`;
    },
    wipe: 'rm -rf /var/lib/postgresql/data /var/lib/postgresql/wal_archive',
    incremental: true,
    replication: postgresqlReplication(port),
    async restored(guest, root, expect) {
      const pw = readFileSync(join(root, 'var/lib/guestagent/postgresql/os_admin.pass'), 'utf8').trim();
      const dbs = guest(['/usr/sbin/runuser', '-u', 'postgres', '--', '/usr/bin/env', `PGPASSWORD=${pw}`, '/usr/bin/psql', '-h', '/var/run/postgresql', '-p', String(port), '-U', 'os_admin', '-d', 'postgres', '-Atc', 'SELECT datname FROM pg_database ORDER BY 1']).split('\n');
      if (!expect.every((d) => dbs.includes(d))) throw new Error(`the restored server lacks the backed-up databases: ${dbs.join(', ')}`);
      return `restored PostgreSQL databases (new os_admin password): ${dbs.filter(Boolean).join(', ')}`;
    },
  }),
  // Trove's default mount point; another one (/srv/redis-vol) tries the agent's drop-in for the unit's ReadWritePaths.
  redis: (port, mount = '/var/lib/redis') => ({
    manager: 'redis',
    version: '7.0',
    unit: 'redis-server',
    mountPoint: mount,
    preBoot(root) {
      // Debian's redis-server.conf binds 6379, the host's: the package's own start at install is not made at all.
      writeFileSync(join(root, 'usr/sbin/policy-rc.d'), '#!/bin/sh\n# real-boot: no service starts from package scripts\nexit 101\n', { mode: 0o755 });
    },
    prepare: {
      databases: [],
      users: [],
      // Trove 18's templates/redis/config.template as is, on the guest's own port and on loopback only.
      config_contents: readFileSync('/usr/lib/python3/dist-packages/trove/templates/redis/config.template', 'utf8')
        .replace(/^port 6379$/m, `port ${port}\nbind 127.0.0.1`),
    },
    async check(api, guest, root) {
      await api('create_user', { users: [{ _name: 'booted', _password: 'B00ted-pw', _databases: [{ _name: 'app' }] }] });
      const sock = '/run/redis/redis-server.sock';
      // Inside the guest, Trove's user authenticates with the guest's own redis-cli, over TCP on the guest's port and over its socket.
      const tcp = guest(['/usr/bin/redis-cli', '-h', '127.0.0.1', '-p', String(port), '--user', 'booted', '--pass', 'B00ted-pw', '--no-auth-warning', 'SET', 'app:k', 'v']).trim();
      if (tcp !== 'OK') throw new Error(`booted could not write its namespace over TCP: ${tcp}`);
      const denied = guest(['/usr/bin/redis-cli', '-s', sock, '--user', 'booted', '--pass', 'B00ted-pw', '--no-auth-warning', 'SET', 'other:k', 'v'], true).trim();
      if (!/NOPERM/.test(denied)) throw new Error(`booted wrote outside its namespace: ${denied}`);
      const wrong = guest(['/usr/bin/redis-cli', '-s', sock, '--user', 'booted', '--pass', 'wrong', '--no-auth-warning', 'PING'], true).trim();
      if (!/WRONGPASS|invalid/.test(wrong)) throw new Error(`a wrong password got in: ${wrong}`);
      const pw = readFileSync(join(root, 'var/lib/guestagent/redis/os_admin.pass'), 'utf8').trim();
      const dir = guest(['/usr/bin/redis-cli', '-s', sock, '--user', 'os_admin', '--pass', pw, '--no-auth-warning', 'CONFIG', 'GET', 'dir']).trim().split('\n')[1];
      if (dir !== mount) throw new Error(`the guest's server runs on ${dir}, not the volume's ${mount}`);
      const saved = guest(['/usr/bin/redis-cli', '-s', sock, '--user', 'os_admin', '--pass', pw, '--no-auth-warning', 'SAVE']).trim();
      if (saved !== 'OK' || !existsSync(join(root, mount, 'dump.rdb'))) throw new Error(`the server could not save onto its data directory: ${saved}`);
      const unit = guest(['/usr/bin/systemctl', 'is-active', 'redis-server']).trim();
      return `guest Redis (redis-server ${unit}, dir ${dir}): booted AUTHs and writes app:*, is refused elsewhere; users.acl: ${readFileSync(join(root, mount, 'users.acl'), 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ')[1]).join(', ')}`;
    },
    wipe: `rm -rf ${mount}/*`,
    // Trove's Redis backup strategy has no incremental.
    incremental: false,
    async restored(guest, root) {
      const pw = readFileSync(join(root, 'var/lib/guestagent/redis/os_admin.pass'), 'utf8').trim();
      const v = guest(['/usr/bin/redis-cli', '-s', '/run/redis/redis-server.sock', '--user', 'os_admin', '--pass', pw, '--no-auth-warning', 'GET', 'app:k']).trim();
      if (v !== 'v') throw new Error(`the restored server does not hold app:k = v: ${v}`);
      return 'restored Redis: app:k = v (the RDB put in place before the server started)';
    },
  }),
};

const t0 = Date.now();
const step = (msg: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${msg}`);
const sh = (file: string, args: string[], opts: { cwd?: string } = {}) => execFileSync(file, args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', ...opts });

async function until<T>(what: string, timeoutMs: number, fn: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

/**
 * The cached guest root, built once by debootstrap (minbase + systemd + cloud-init): bookworm, or
 * another suite with packages the image ships (an image with Oracle's MySQL: Debian unstable's).
 */
function guestRootfs(image: { suite: string; packages: string } = { suite: 'bookworm', packages: '' }): string {
  const name = image.suite === 'bookworm' ? 'rootfs' : `rootfs-${image.suite}`;
  const packages = [PACKAGES, image.packages].filter(Boolean).join(',');
  const rootfs = join(CACHE, name);
  const stamp = join(CACHE, `${name}.packages`);
  if (existsSync(rootfs) && existsSync(stamp) && readFileSync(stamp, 'utf8') === packages) return rootfs;
  step(`building the ${image.suite} guest root with debootstrap (cached in ${CACHE})`);
  rmSync(rootfs, { recursive: true, force: true });
  const tmp = join(CACHE, `${name}.tmp`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(CACHE, { recursive: true });
  sh('debootstrap', ['--variant=minbase', `--include=${packages}`, image.suite, tmp, 'http://deb.debian.org/debian']);
  renameSync(tmp, rootfs);
  writeFileSync(stamp, packages);
  return rootfs;
}

/**
 * The user data Trove 18 hands Nova: the template's text followed by what its
 * own BaseInstance.prepare_cloud_config makes of the injected files. Trove's
 * `injected_config_owner` defaults to `ubuntu` (its Ubuntu images); a Debian
 * image has no such user, so the operator sets it to root, as here.
 */
function userData(template: string, files: Record<string, string>): string {
  const script = [
    'import json, sys, warnings', 'warnings.filterwarnings("ignore")',
    'from trove.common import cfg', 'cfg.CONF([], project="trove")', 'cfg.CONF.set_override("injected_config_owner", "root")',
    'from trove.instance.models import BaseInstance',
    'sys.stdout.write(BaseInstance.prepare_cloud_config(None, json.loads(sys.argv[1])))',
  ].join('\n');
  return template + execFileSync('/usr/bin/python3', ['-c', script, JSON.stringify(files)], { encoding: 'utf8' });
}

const status = (x: { kwargs: Record<string, unknown> }) => (x.kwargs['payload'] as { service_status?: string } | undefined)?.service_status ?? '';

/**
 * Trove's replica create with the guest as the replica, under systemd: a source on the host (the
 * agent's own datastore code running its server on 127.0.0.1) is enabled as replication source
 * with Trove's replica_source template and its snapshot backup goes to the host's Swift; the
 * guest, wiped as a new instance, is prepared with that backup and Trove's snapshot dict (the
 * replica template as its config). It must replicate from where the backup ended (a row written
 * after the snapshot, and one after the replica started, arrive); detach_replica leaves it on its own.
 */
async function replicaOfHostSource(
  v: Variant,
  guest: (cmd: string[], mayFail?: boolean) => string,
  c: PythonCaller,
  conductor: PythonConductor,
  swift: { storageUrl: string; token: string },
  context: Record<string, unknown>,
): Promise<string> {
  const repl = v.replication!;
  const ctx = silentCtx();
  const dir = mkdtempSync('/var/tmp/ga-boot-source-');
  const port = await freePort();
  let src: HostSource | null = null;
  try {
    src = await repl.source(dir, port);
    const { ds } = src;
    // PostgreSQL's session is in database replicated already; MariaDB's names it.
    const table = v.manager === 'postgresql' ? 't' : 'replicated.t';
    await src.sql(`CREATE TABLE ${table} (id INT PRIMARY KEY)`);
    await src.sql(`INSERT INTO ${table} VALUES (1)`);
    await ds.replication!.enableAsMaster(readFileSync(join(repl.templates, 'replica_source.config.template'), 'utf8'), ctx);
    const snap = await measureBackup({ datastore: ds, name: v.manager, version: v.version, storageUrl: swift.storageUrl, token: swift.token, segmentMaxSize: 2 ** 31, codec: 'gzip' });
    const user = await ds.replication!.createReplicationUser(ctx);
    const master = await ds.replication!.masterRef(ctx);
    await src.sql(`INSERT INTO ${table} VALUES (2)`); // after the snapshot: only replication brings it
    guest(['/usr/bin/systemctl', 'stop', 'guestagent.service', v.unit]);
    guest(['/bin/sh', '-c', `${v.wipe} && find /var/lib/guestagent -mindepth 1 -delete`]);
    guest(['/usr/bin/systemctl', 'start', '--no-block', 'guestagent.service']);
    await until('the agent of the new replica to answer', 2 * 60_000, async () => ((await c.raw('rpc_ping', {}, { timeout: 5 })).ok ? true : null));
    const from = conductor.received.length;
    const snapshotId = snap.location.split('/').at(-1)!.split('.')[0]!;
    ok(await c.api('prepare', {
      memory_mb: 1024, packages: '', ...v.prepare, databases: [], users: [], device_path: null, mount_point: v.mountPoint, root_password: null, overrides: {}, ds_version: v.version,
      backup_info: { id: snapshotId, location: snap.location, checksum: snap.checksum, type: null },
      snapshot: {
        dataset: { datastore_manager: v.manager, dataset_size: 0.01, volume_size: 1, snapshot_id: snapshotId },
        replication_strategy: repl.strategy, master, replica_conf: { log_position: {}, replication_user: user },
        config: readFileSync(join(repl.templates, 'replica.config.template'), 'utf8'),
      },
    }, { context, notification: true }));
    await conductor.waitFor((x) => x.method === 'heartbeat' && status(x) === 'building', 2 * 60_000, from);
    const end = await conductor.waitFor((x) => x.method === 'heartbeat' && ['healthy', 'failed to spawn'].includes(status(x)), 10 * 60_000, from);
    if (status(end) !== 'healthy') throw new Error(`the replica's prepare ended ${status(end)}`);
    await src.sql(`INSERT INTO ${table} VALUES (3)`);
    const sql = (q: string) => repl.guestSql(guest, q, src!.adminPassword);
    const rows = await until('rows 1-3 replicated into the guest', 60_000, async () => {
      const out = repl.guestSql(guest, `SELECT id FROM ${table} ORDER BY id`, src!.adminPassword, true).split('\n').join(',');
      return out === '1,2,3' ? out : null;
    });
    const how = repl.isReplica(sql, guest);
    const detached = ok(await c.api('detach_replica', { for_failover: false })) as { replication_user: string } | null;
    if (v.manager !== 'postgresql' && detached?.replication_user !== user.name) throw new Error(`detach_replica answered ${JSON.stringify(detached)}`);
    repl.isDetached(sql, guest);
    return `replica of a source on the host (127.0.0.1:${port}): rows ${rows} replicated ${how}; detach_replica: on its own, writable`;
  } finally {
    await src?.close().catch(() => {});
    await src?.ds.lifecycle.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  const name = process.argv[2] ?? 'mariadb';
  const variant = VARIANTS[name];
  if (!variant) throw new Error(`unknown datastore ${name}: one of ${Object.keys(VARIANTS).join(', ')}`);
  if (process.getuid?.() !== 0) throw new Error('run as root (debootstrap, systemd-nspawn)');
  for (const bin of ['/usr/sbin/debootstrap', '/usr/bin/systemd-nspawn']) {
    if (!existsSync(bin)) throw new Error(`${bin} missing: apt-get install -y debootstrap systemd-container`);
  }
  const guestServerPort = await guestPort();
  const v = variant(guestServerPort);
  const rootfs = guestRootfs(v.image);
  step('building the release tarball');
  sh(join(ROOT, 'scripts/build-release.sh'), [], { cwd: ROOT });
  const tarball = readdirSync(join(ROOT, 'dist')).find((f) => /^guestagent-.*-linux-x64\.tar\.gz$/.test(f));
  if (!tarball) throw new Error('no release tarball in dist/');

  const work = mkdtempSync('/var/tmp/ga-boot-');
  const children: ChildProcess[] = [];
  let stopRabbit: (() => Promise<void>) | null = null;
  let stopSwift: (() => Promise<void>) | null = null;
  let caller: PythonCaller | null = null;
  let conductor: PythonConductor | null = null;
  const machine = `ga-boot-${randomUUID().slice(0, 8)}`;
  let leader = 0;
  try {
    const httpPort = await freePort();
    children.push(spawn('/usr/bin/python3', ['-m', 'http.server', '--bind', '127.0.0.1', String(httpPort), '--directory', join(ROOT, 'dist')], { stdio: 'ignore' }));
    const [rabbit, swift] = await Promise.all([startRabbitNode(), startSwift()]);
    stopRabbit = rabbit.stop;
    stopSwift = swift.stop;
    const url = rabbit.info.url.replace(/^amqp:/, 'rabbit:');
    const guestId = randomUUID();
    const key = `boot-key-${randomUUID()}`;
    const queue = `trove-conductor-${guestId}`;
    conductor = await PythonConductor.start({ url: rabbit.info.url, keys: { [guestId]: key }, queue });
    step(`private RabbitMQ on ${rabbit.info.port}, release served on ${httpPort}, guest ${guestId}, its ${name} on 127.0.0.1:${guestServerPort}`);

    // The guest: a copy of the cached root with the NoCloud seed Trove's user data would be.
    const root = join(work, 'root');
    // cp -a: Node's cpSync makes every directory 0755, /tmp and /var/tmp included (found when Trove's
    // template, tmpdir = /var/tmp, met a guest where mysql could not write there).
    execFileSync('cp', ['-a', rootfs, root]);
    const template = readFileSync(join(ROOT, `cloudinit/${v.manager}.cloudinit`), 'utf8').replaceAll('GUESTAGENT_RELEASE_URL', `http://127.0.0.1:${httpPort}/${tarball}`);
    const files = {
      '/etc/trove/conf.d/guest_info.conf': `[DEFAULT]\nguest_id=${guestId}\ndatastore_manager=${v.manager}\ndatastore_version=${v.version}\ntenant_id=boot-project\ninstance_rpc_encr_key=${key}\n`,
      '/etc/trove/conf.d/trove-guestagent.conf': `[DEFAULT]\ntransport_url = ${url}\ncontrol_exchange = trove\nconductor_queue = ${queue}\nreport_interval = 5\n[${v.manager}]\nmount_point = ${v.mountPoint}\n# No separate volume device in this container (Trove's default is /dev/vdb): the mount point is a directory.\ndevice_path =\n`,
    };
    const seed = join(root, 'var/lib/cloud/seed/nocloud');
    mkdirSync(seed, { recursive: true });
    writeFileSync(join(seed, 'user-data'), userData(template, files));
    writeFileSync(join(seed, 'meta-data'), `instance-id: ${guestId}\nlocal-hostname: ${machine}\n`);
    // minbase has no locales package: C.UTF-8 is the one locale it has.
    writeFileSync(join(root, 'etc/cloud/cloud.cfg.d/90-guestagent-boot.cfg'), 'datasource_list: [ NoCloud, None ]\nlocale: C.UTF-8\n');
    v.preBoot(root);
    writeFileSync(join(root, 'etc/hostname'), `${machine}\n`);
    cpSync('/etc/resolv.conf', join(root, 'etc/resolv.conf'));

    step(`booting ${machine} with systemd-nspawn (console in ${work}/console.log)`);
    const consoleLog = openSync(join(work, 'console.log'), 'w');
    const nspawn = spawn('systemd-nspawn', ['--boot', '--directory', root, '--machine', machine, '--register=no', '--keep-unit', '--console=pipe', '--resolv-conf=off'], {
      stdio: ['ignore', consoleLog, consoleLog],
      // The guest's systemd on cgroup v2: on a v1/hybrid host it otherwise never sees a failed unit's
      // cgroup empty, and cloud-config (oneshot, TimeoutSec=0) hangs in stop-sigterm for good.
      env: { ...process.env, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: process.env['SYSTEMD_NSPAWN_UNIFIED_HIERARCHY'] ?? '1' },
    });
    children.push(nspawn);
    const exited = new Promise<number | null>((r) => nspawn.once('exit', (c) => r(c)));
    void exited.then((c) => step(`systemd-nspawn exited (${c})`));

    // The container's init: killing it ends every process of the guest (its PID namespace);
    // killing systemd-nspawn alone would leave the guest running.
    // systemd-nspawn's first child is a helper that exits once it has started the init (which
    // it makes nspawn's child too): only a child that has become systemd is the init. Taking the
    // first child seen failed one boot in session 19 (nsenter: the helper's /proc entry was gone).
    leader = await until('the guest init', 30_000, async () => {
      try {
        for (const pid of sh('pgrep', ['-P', String(nspawn.pid)]).trim().split('\n').map(Number)) {
          if (pid && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'systemd') return pid;
        }
        return null;
      } catch {
        return null;
      }
    });
    caller = await PythonCaller.start({ url: rabbit.info.url, guestId, key });
    const c = caller;
    step(`waiting for cloud-init to install ${name} and the agent, and for the agent to answer`);
    await until('the agent to answer rpc_ping', 20 * 60_000, async () => {
      if (nspawn.exitCode !== null) throw new Error('the guest stopped; see console.log');
      const r = await c.raw('rpc_ping', {}, { timeout: 5 });
      return r.ok ? true : null;
    });
    step('the agent answers; sending prepare through Trove\'s guest API');
    const from = conductor.received.length;
    ok(await caller.api('prepare', {
      memory_mb: 1024, packages: '', ...v.prepare, device_path: null, mount_point: v.mountPoint, root_password: null, overrides: {}, ds_version: v.version,
    }, { notification: true }));
    const first = await conductor.waitFor((x) => x.method === 'heartbeat' && x.kwargs['instance_id'] === guestId, 5 * 60_000, from);
    step(`first heartbeat at the conductor: ${JSON.stringify(first.kwargs['payload'])}`);
    const end = await conductor.waitFor((x) => x.method === 'heartbeat' && ['healthy', 'failed to spawn'].includes(status(x)), 10 * 60_000, from);
    if (status(end) !== 'healthy') throw new Error(`prepare ended ${status(end)}`);
    step('prepare reached healthy');
    // Seen from inside the guest: its own client in its namespaces (nsenter into the container's init).
    const guest = (cmd: string[], mayFail = false) => {
      const r = spawnSync('nsenter', ['-t', String(leader), '-m', '-u', '-i', '-n', '-p', ...cmd], { encoding: 'utf8' });
      if (r.status !== 0 && !mayFail) throw new Error(`${cmd.join(' ')} in the guest: exit ${r.status}: ${r.stderr}`);
      return r.stdout + (mayFail ? r.stderr : '');
    };
    step(await v.check(async (method, args) => ok(await c.api(method, args)), guest, root));
    // Trove's restart: the agent has the distribution's unit restart the server (a new main PID) and reports it healthy again.
    const mainPid = () => guest(['/usr/bin/systemctl', 'show', '--property', 'MainPID', '--value', v.unit]).trim();
    const before = mainPid();
    ok(await caller.api('restart', {}));
    const mark = conductor.received.length;
    const after = mainPid();
    if (after === '0' || after === before) throw new Error(`restart: ${v.unit}'s main PID went from ${before} to ${after}`);
    await conductor.waitFor((x) => x.method === 'heartbeat' && status(x) === 'healthy', 2 * 60_000, mark);
    step(`restart: ${v.unit} main PID ${before} -> ${after}, healthy again`);
    if (v.unit === 'mariadb' || v.unit === 'mysql') {
      // Trove 18's upgrade: pre_upgrade, then the cast with the new datastore_version (here the
      // installed server's full version: packages updated under it), then healthy to poll for.
      const program = v.unit === 'mariadb' ? '/usr/sbin/mariadbd' : '/usr/sbin/mysqld';
      const installed = /Ver\s+(\d+\.\d+\.\d+)/.exec(guest([program, '--version']))?.[1];
      if (!installed) throw new Error(`upgrade: no version from ${program} --version in the guest`);
      const info = ok(await caller.api('pre_upgrade', {})) as Record<string, unknown>;
      const fromU = conductor.received.length;
      ok(await caller.api('upgrade', { upgrade_info: { ...info, datastore_version: installed } }));
      await conductor.waitFor((x) => x.method === 'heartbeat' && status(x) === 'upgrading', 60_000, fromU);
      await conductor.waitFor((x) => x.method === 'heartbeat' && status(x) === 'healthy', 5 * 60_000, fromU);
      const upgraded = mainPid();
      if (upgraded === after) throw new Error(`upgrade: ${v.unit}'s main PID stayed ${after}`);
      // MariaDB's upgrader leaves its marker; MySQL upgrades its own system tables as it starts.
      if (v.unit === 'mariadb') {
        const marker = guest(['/bin/cat', `${v.mountPoint}/data/mysql_upgrade_info`]);
        if (!marker.includes(installed)) throw new Error(`upgrade: mysql_upgrade_info says ${JSON.stringify(marker)}`);
      }
      step(`upgrade to ${installed}: upgrading, ${v.unit} main PID ${after} -> ${upgraded}, system tables upgraded, healthy`);
    }
    // A backup from the guest, as `trove backup-create` casts it: the datastore's tool against the
    // distribution's server, streamed into the host's private Swift (the shared network) with the caller's token.
    const context = { auth_token: swift.info.token, service_catalog: [{ type: 'object-store', endpoints: [{ interface: 'public', region_id: 'RegionOne', url: swift.info.storageUrl }] }] };
    const swiftClient = createSwiftClient({ storageUrl: swift.info.storageUrl, token: swift.info.token });
    const cond = conductor;
    const backup = async (parent: { location: string; checksum: string } | null) => {
      const id = randomUUID();
      const from = cond.received.length;
      ok(await c.api('create_backup', { backup_info: { id, instance_id: guestId, location: null, type: null, checksum: null, datastore: v.manager, datastore_version: v.version, ...(parent ? { parent } : {}) } }, { context, notification: true }));
      const done = await cond.waitFor((x) => x.method === 'update_backup' && x.kwargs['backup_id'] === id && x.kwargs['state'] !== 'BUILDING', 5 * 60_000, from);
      if (done.kwargs['state'] !== 'COMPLETED') throw new Error(`create_backup in the guest ended ${JSON.stringify(done.kwargs)}`);
      const location = String(done.kwargs['location']);
      const head = await swiftClient.head('database_backups', location.split('/').at(-1)!);
      if (head.etag !== done.kwargs['checksum'] || head.contentLength < 100) throw new Error(`the backup in Swift (${head.etag}, ${head.contentLength} B) is not what the guest reported (${String(done.kwargs['checksum'])})`);
      if (parent && head.headers['x-object-meta-parent-location'] !== parent.location) throw new Error(`the incremental's parent-location is ${String(head.headers['x-object-meta-parent-location'])}, not ${parent.location}`);
      step(`${parent ? 'incremental' : 'full'} backup from the guest: ${location.split('/').at(-1)} ${(head.contentLength / 1e6).toFixed(1)} MB in Swift, checksum ${head.etag}`);
      return { id, location, checksum: head.etag };
    };
    const full = await backup(null);
    let restoreFrom = full;
    const expected = ['booted', 'fromprepare'];
    if (v.incremental) {
      // What changed after the full backup is only in the incremental: the restore needs the chain.
      ok(await c.api('create_database', { databases: [{ _name: 'afterfull' }] }));
      restoreFrom = await backup({ location: full.location, checksum: full.checksum });
      expected.push('afterfull');
    }
    // The restore, as a new instance from that backup: a blank volume and no agent state (the same
    // guest, its agent and server stopped), then prepare(backup_info) through Trove's guest API.
    guest(['/usr/bin/systemctl', 'stop', 'guestagent.service', v.unit]);
    guest(['/bin/sh', '-c', `${v.wipe} && find /var/lib/guestagent -mindepth 1 -delete`]);
    guest(['/usr/bin/systemctl', 'start', '--no-block', 'guestagent.service']);
    await until('the restarted agent to answer', 2 * 60_000, async () => ((await c.raw('rpc_ping', {}, { timeout: 5 })).ok ? true : null));
    const fromR = conductor.received.length;
    ok(await c.api('prepare', {
      memory_mb: 1024, packages: '', ...v.prepare, databases: [], users: [], device_path: null, mount_point: v.mountPoint, root_password: null, overrides: {}, ds_version: v.version,
      backup_info: { id: restoreFrom.id, location: restoreFrom.location, checksum: restoreFrom.checksum, type: null, datastore: v.manager, datastore_version: v.version },
    }, { context, notification: true }));
    // A refused prepare (a cast: its error stays in the guest's journal) never reports building.
    await conductor.waitFor((x) => x.method === 'heartbeat' && status(x) === 'building', 2 * 60_000, fromR);
    const endR = await conductor.waitFor((x) => x.method === 'heartbeat' && ['healthy', 'failed to spawn'].includes(status(x)), 10 * 60_000, fromR);
    if (status(endR) !== 'healthy') throw new Error(`the restoring prepare ended ${status(endR)}`);
    step(await v.restored(guest, root, expected));
    // A rebuild, as `openstack database instance rebuild` leaves it: a new root disk (no agent state,
    // the old os_admin password gone with it) over the same volume, then Trove's rebuild cast.
    guest(['/usr/bin/systemctl', 'stop', 'guestagent.service', v.unit]);
    guest(['/usr/bin/find', '/var/lib/guestagent', '-mindepth', '1', '-delete']);
    guest(['/usr/bin/systemctl', 'start', '--no-block', 'guestagent.service']);
    await until('the agent on the rebuilt guest to answer', 2 * 60_000, async () => ((await c.raw('rpc_ping', {}, { timeout: 5 })).ok ? true : null));
    const fromRb = conductor.received.length;
    ok(await c.api('rebuild', { ds_version: v.version, config_contents: v.prepare.config_contents, config_overrides: {} }, { notification: true }));
    await conductor.waitFor((x) => x.method === 'heartbeat' && status(x) === 'building', 2 * 60_000, fromRb);
    const endRb = await conductor.waitFor((x) => x.method === 'heartbeat' && ['healthy', 'failed to spawn'].includes(status(x)), 10 * 60_000, fromRb);
    if (status(endRb) !== 'healthy') throw new Error(`the rebuild ended ${status(endRb)}`);
    step(`rebuild: ${await v.restored(guest, root, expected)}`);
    if (v.replication) step(await replicaOfHostSource(v, guest, c, conductor, swift.info, context));
    // The unit is Type=notify: systemd saw READY=1 (else it stays 'activating') and the agent's STATUS.
    const unit = guest(['systemctl', 'show', 'guestagent.service', '-p', 'ActiveState', '-p', 'SubState', '-p', 'StatusText', '-p', 'WatchdogUSec']);
    if (!/^ActiveState=active$/m.test(unit) || !/^StatusText=serving guestagent\./m.test(unit)) throw new Error(`guestagent.service is not active with the agent's status:\n${unit}`);
    step(`guestagent.service: ${unit.trim().split('\n').join(', ')}`);
    // The release's native module (malloc_trim, the idle pageout) loaded under the unit.
    const journal = guest(['/usr/bin/journalctl', '-u', 'guestagent.service', '-o', 'cat', '--no-pager']);
    if (journal.includes('idle memory module unavailable')) throw new Error(`the agent runs without its idle memory module:\n${journal.split('\n').filter((l) => l.includes('idle memory')).join('\n')}`);
    console.log(`PASS real boot (${name}) in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    return 0;
  } catch (e) {
    console.log(`FAIL real boot (${name}) after ${((Date.now() - t0) / 1000).toFixed(0)} s: ${(e as Error).message}`);
    try {
      console.log(readFileSync(join(work, 'console.log'), 'utf8').split('\n').slice(-20).join('\n'));
      // The agent's own account of it, from the guest's journal.
      console.log(execFileSync('journalctl', ['-D', join(work, 'root/var/log/journal'), '-u', 'guestagent', '-o', 'cat', '--no-pager', '-n', '40'], { encoding: 'utf8' }));
      // And the datastore unit's, which the agent only sees as systemctl's exit code.
      console.log(execFileSync('journalctl', ['-D', join(work, 'root/var/log/journal'), '-u', v.unit, '-o', 'short-monotonic', '--no-pager', '-n', '30'], { encoding: 'utf8' }));
    } catch {
      /* no console or journal yet */
    }
    return 1;
  } finally {
    await caller?.close().catch(() => {});
    await conductor?.close().catch(() => {});
    if (leader) {
      try {
        process.kill(leader, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    for (const ch of children.reverse()) if (ch.exitCode === null) ch.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 1000));
    await stopRabbit?.().catch(() => {});
    await stopSwift?.().catch(() => {});
    if (!process.env['GA_BOOT_KEEP']) rmSync(work, { recursive: true, force: true });
  }
}

process.exit(await main());
