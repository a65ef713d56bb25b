/**
 * Interop with Trove's own backup tool (upstream openstack/trove `backup/`,
 * the program Trove 18's guest runs in its backup container), in both
 * directions, through the real Keystone v3 and the Keystone-authenticated
 * Swift of setup/keystone.ts: backups Trove's tool made (MariaDB full and
 * incremental, PostgreSQL full) restored by the agent's prepare(backup_info);
 * and the agent's backups (MariaDB full + incremental and an encrypted one,
 * PostgreSQL full + incremental) restored by Trove's tool.
 *
 * Debian does not package the tool and its code is not ours to vendor, so
 * these run only when GA_TROVE_SRC names a checkout of openstack/trove
 * (tag 18.0.0: `git clone --branch 18.0.0 https://opendev.org/openstack/trove`);
 * without it they are reported skipped. The backups the tool made here are
 * also kept as data (test/fixtures/backup/trove-18, written when
 * GA_TROVE_CAPTURE names a directory too), and the last block restores them
 * on every run. The tool runs with Debian's
 * python3 and its oslo/keystoneauth1/swiftclient packages (python3-trove's
 * dependencies), as root, in a private mount namespace where /var/lib/mysql
 * is an empty tmpfs: it creates its incremental scratch directory there, and
 * that path belongs to the machine's own MariaDB. Its command line carries
 * the token and the database password, as Trove's guest passes them.
 */
import { execFile, spawn } from 'node:child_process';
import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { chmodSync, closeSync, existsSync, openSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createMariadbDatastore } from '../../../datastores/mariadb/index.ts';
import { createPostgresDatastore } from '../../../datastores/postgresql/index.ts';
import { MARIABACKUP } from '../../../datastores/mysql/backup.ts';
import { connectSql } from '../../../datastores/mysql/sql.ts';
import { createBackupService, type CallerContext } from '../../../src/backup/service.ts';
import type { BackupInfo, Datastore, OpContext, PrepareRequest } from '../../../src/datastore.ts';
import { freePort } from '../harness/ports.ts';
import { capture, FIXTURE_KEY, FIXTURES, recorded, replay, type RecordedBackup } from '../harness/trove-fixtures.ts';
import { mariabackupHome, runTroveTool as runTool, toolRestored, toolSaved, TROVE_SRC } from '../harness/trove-tool.ts';

const ks = inject('keystone');
const log = pino({ level: 'silent' });
const ctx = (): OpContext => ({ log, signal: new AbortController().signal });
const run = promisify(execFile);
const KEY = 'trove-tool-key-' + randomUUID();
/** What Trove 18's API puts in the request context: the user's token and project (no catalog: the guest asks Keystone). */
const caller: CallerContext = { auth_token: ks.userToken, project_id: ks.projectId };
const CONFIG = '[mysqld]\ninnodb_buffer_pool_size = 64M\n';

const mariadb = (stateDir: string, port: number): Datastore =>
  createMariadbDatastore({ log, section: {}, runner: 'process', stateDir, port, events: {} });
const prepareRequest = (backupInfo: PrepareRequest['backupInfo']): PrepareRequest => ({
  memoryMb: 0, packages: [], databases: [], users: [], devicePath: null, mountPoint: null, backupInfo, configContents: CONFIG,
  rootPassword: null, overrides: null, clusterConfig: null, snapshot: null, modules: null, dsVersion: '10.11',
});
const adminPassword = (stateDir: string) => /password = (.*)/.exec(readFileSync(join(stateDir, 'os_admin.cnf'), 'utf8'))![1]!;
const admin = (stateDir: string) => connectSql({ socketPath: join(stateDir, 'run', 'mysqld.sock'), user: 'os_admin', password: adminPassword(stateDir) });

const runTroveTool = (driver: string, args: string[], mounts: Array<[string, string]>, env: Record<string, string> = {}) => runTool(ks, driver, args, mounts, env);

function saved(out: string): { location: string; checksum: string } {
  const r = toolSaved(out);
  expect(r, out.slice(-2000)).not.toBeNull();
  return r!;
}

/** Records a backup the tool made as test/fixtures data (GA_TROVE_CAPTURE; see harness/trove-fixtures.ts). */
const record = (name: string, made: { location: string; checksum: string }, rows: Array<{ id: number; name: string }>, key: string | null, server: string) =>
  capture(name, made.location, made.checksum, { storageUrl: ks.storageUrl, token: ks.userToken }, {
    key, rows, made: `Trove 18.0.0 backup/main.py, ${server}, ${new Date().toISOString().slice(0, 10)}`,
  });

function service(ds: Datastore, encryptionKey: string | null, datastoreVersion = '10.11') {
  const updates: Record<string, unknown>[] = [];
  const svc = createBackupService({
    datastore: ds, updateBackup: async (_id, f) => void updates.push({ ...f }), usedGb: async () => 0.01,
    container: 'database_backups', segmentMaxSize: 2 * 1024 ** 3, swiftUrl: null,
    keystone: { authUrl: ks.authUrl, regionName: 'RegionOne', applicationCredential: null },
    datastoreVersion, encryptionKey, compression: 'gzip',
  });
  return { svc, updates };
}

async function rows(stateDir: string): Promise<Array<{ id: number; name: string }>> {
  const db = admin(stateDir);
  try {
    return await db.query('SELECT id, name FROM shop.items ORDER BY id');
  } finally {
    await db.end();
  }
}

/** The agent's restore: a new MariaDB prepared from the backup, as prepare(backup_info) does. */
async function agentRestore(dir: string, opened: Datastore[], location: string, checksum: string, key: string | null = KEY): Promise<string> {
  const ds = mariadb(dir, await freePort());
  opened.push(ds);
  await ds.lifecycle.prepare(prepareRequest({ id: basename(dir), location, checksum }), ctx(), service(ds, key).svc.fetcher(caller, null));
  return dir;
}

const client = (at: { host: string; port: number }, user: string, password?: string, database = 'shop') => new pg.Client({ host: at.host, port: at.port, user, password, database });
async function itemsAt(c: pg.Client): Promise<Array<{ id: number; name: string }>> {
  await c.connect();
  try {
    return (await c.query<{ id: number; name: string }>('SELECT id, name FROM items ORDER BY id')).rows;
  } finally {
    await c.end();
  }
}

async function agentPg(stateDir: string, opened: Datastore[]): Promise<{ ds: Datastore; stateDir: string; port: number }> {
  mkdirSync(stateDir, { mode: 0o711 });
  const port = await freePort();
  const ds = createPostgresDatastore({ log, section: {}, runner: 'process', stateDir, port, events: {} });
  opened.push(ds);
  return { ds, stateDir, port };
}
const agentClient = (a: { stateDir: string; port: number }, database = 'shop') =>
  client({ host: join(a.stateDir, 'run'), port: a.port }, 'os_admin', readFileSync(join(a.stateDir, 'os_admin.pass'), 'utf8').trim(), database);
const pgRequest = (backupInfo: PrepareRequest['backupInfo']): PrepareRequest => ({ ...prepareRequest(backupInfo), configContents: '', dsVersion: '15' });

describe.skipIf(!TROVE_SRC)("Trove 18's own backup tool and the agent read each other's MariaDB backups", () => {
  let tmp: string;
  let srcDir: string;
  let home: string;
  let source: Datastore;
  const opened: Datastore[] = [];

  /** Trove's tool as Trove 18's guest runs it (mysql_common/service.py); its mariabackup finds the agent's server through $HOME/.my.cnf. */
  const troveTool = (args: string[], varLibMysql?: string) =>
    // Trove's guest mounts its /var/lib/mysql into the tool's container, and the tool restores into
    // /var/lib/mysql/data whatever --db-datadir says (main.py never passes it on) and unpacks each
    // incremental in /var/lib/mysql/<checksum> to rename files from there: one directory stands in.
    runTroveTool('mariabackup', args, [[varLibMysql ?? 'tmpfs', '/var/lib/mysql']], { HOME: home });

  async function serverVersion(): Promise<string> {
    const db = admin(srcDir);
    try {
      return `MariaDB ${(await db.query<{ v: string }>('SELECT VERSION() AS v'))[0]!.v}`;
    } finally {
      await db.end();
    }
  }

  async function insert(values: string): Promise<void> {
    const db = admin(srcDir);
    await db.query(`INSERT INTO shop.items VALUES ${values}`);
    await db.end();
  }

  /** Trove's restore into an empty directory, then the rows read from a plain mariadbd started on it. */
  async function troveRestore(name: string, location: string, checksum: string, extra: string[] = []): Promise<Array<{ id: number; name: string }>> {
    const varLib = join(tmp, name);
    const dir = join(varLib, 'data');
    mkdirSync(dir, { recursive: true });
    const out = await troveTool(['--nobackup', `--restore-from=${location}`, `--restore-checksum=${checksum}`, ...extra], varLib);
    expect(toolRestored(out), out.slice(-2000)).toBe(true);
    // Trove 18 prepares only incremental chains; a full one is prepared here as any restore must be.
    if (!existsSync(join(dir, 'xtrabackup_checkpoints')) || /backup_type = full-backuped/.test(readFileSync(join(dir, 'xtrabackup_checkpoints'), 'utf8'))) {
      await run(MARIABACKUP, ['--prepare', `--target-dir=${dir}`]);
    }
    const sock = join(dir, 'check.sock');
    const server = spawn('/usr/sbin/mariadbd', ['--no-defaults', `--datadir=${dir}`, `--socket=${sock}`, '--skip-networking', '--skip-grant-tables', '--user=root', `--pid-file=${join(dir, 'check.pid')}`, '--innodb-buffer-pool-size=64M'], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 300 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 100));
      const db = connectSql({ socketPath: sock, user: 'root', password: '' });
      try {
        return await db.query('SELECT id, name FROM shop.items ORDER BY id');
      } finally {
        await db.end();
      }
    } finally {
      server.kill('SIGTERM');
      await new Promise((r) => server.once('exit', r));
    }
  }

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'ga-trovetool-'));
    srcDir = join(tmp, 'source');
    home = join(tmp, 'home');
    source = mariadb(srcDir, await freePort());
    opened.push(source);
    await source.lifecycle.prepare(prepareRequest(null), ctx());
    // Where Trove's mariabackup connects (its --host=localhost: the socket) and reads the data dir.
    mariabackupHome(home, srcDir);
    const db = admin(srcDir);
    await db.query('CREATE DATABASE shop');
    await db.query('CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(50))');
    await db.query("INSERT INTO shop.items VALUES (1, 'apple'), (2, 'pear')");
    await db.end();
  }, 180_000);

  afterAll(async () => {
    for (const ds of opened) await ds.lifecycle.close().catch(() => {});
    if (tmp && !process.env['GA_KEEP_AGENT']) rmSync(tmp, { recursive: true, force: true });
  });

  const toolArgs = () => ['--backup', '--db-host=localhost', '--db-user=os_admin', `--db-password=${adminPassword(srcDir)}`, '--swift-extra-metadata=datastore:mariadb,datastore_version:10.11'];
  let troveFull: { location: string; checksum: string };

  it("restores a full backup made by Trove's tool", async () => {
    const id = randomUUID();
    troveFull = saved(await troveTool([...toolArgs(), `--backup-id=${id}`]));
    expect(troveFull.location).toBe(`${ks.storageUrl}/database_backups/${id}.xbstream.gz`);
    const dir = await agentRestore(join(tmp, 'agent-from-trove-full'), opened, troveFull.location, troveFull.checksum);
    const want = [{ id: 1, name: 'apple' }, { id: 2, name: 'pear' }];
    expect(await rows(dir)).toEqual(want);
    await record('mariadb-full', troveFull, want, null, await serverVersion());
  });

  it("restores an encrypted full backup made by Trove's tool with the same backup_aes_cbc_key", async () => {
    const id = randomUUID();
    const made = saved(await troveTool([...toolArgs(), `--backup-id=${id}`, `--backup-encryption-key=${FIXTURE_KEY}`]));
    expect(made.location).toBe(`${ks.storageUrl}/database_backups/${id}.xbstream.gz.enc`);
    const dir = await agentRestore(join(tmp, 'agent-from-trove-enc'), opened, made.location, made.checksum, FIXTURE_KEY);
    const want = [{ id: 1, name: 'apple' }, { id: 2, name: 'pear' }];
    expect(await rows(dir)).toEqual(want);
    await record('mariadb-full-encrypted', made, want, FIXTURE_KEY, await serverVersion());
  });

  it("restores Trove's incremental backup with its parent", async () => {
    await insert("(3, 'plum')");
    const id = randomUUID();
    const inc = saved(await troveTool([...toolArgs(), `--backup-id=${id}`, '--incremental', `--parent-location=${troveFull.location}`, `--parent-checksum=${troveFull.checksum}`]));
    const dir = await agentRestore(join(tmp, 'agent-from-trove-inc'), opened, inc.location, inc.checksum);
    const want = [{ id: 1, name: 'apple' }, { id: 2, name: 'pear' }, { id: 3, name: 'plum' }];
    expect(await rows(dir)).toEqual(want);
    await record('mariadb-incremental', inc, want, null, await serverVersion());
  });

  it("Trove's tool restores the agent's full and incremental backups", async () => {
    const { svc, updates } = service(source, null);
    const full: BackupInfo = { id: randomUUID(), datastore: 'mariadb', datastoreVersion: '10.11' };
    await svc.create(full, caller, ctx());
    const f = updates.at(-1)!;
    expect(f, JSON.stringify(f)).toMatchObject({ state: 'COMPLETED' });
    await insert("(4, 'quince')");
    await svc.create({ id: randomUUID(), datastore: 'mariadb', datastoreVersion: '10.11', parent: { location: String(f['location']), checksum: String(f['checksum']) } }, caller, ctx());
    const i = updates.at(-1)!;
    expect(i, JSON.stringify(i)).toMatchObject({ state: 'COMPLETED' });
    const want = [{ id: 1, name: 'apple' }, { id: 2, name: 'pear' }, { id: 3, name: 'plum' }, { id: 4, name: 'quince' }];
    expect(await troveRestore('trove-from-agent-inc', String(i['location']), String(i['checksum']))).toEqual(want);
  });

  it("Trove's tool decrypts and restores the agent's encrypted backup with backup_aes_cbc_key", async () => {
    const { svc, updates } = service(source, KEY);
    await svc.create({ id: randomUUID(), datastore: 'mariadb', datastoreVersion: '10.11' }, caller, ctx());
    const f = updates.at(-1)!;
    expect(f, JSON.stringify(f)).toMatchObject({ state: 'COMPLETED' });
    expect(String(f['location'])).toMatch(/\.xbstream\.gz\.enc$/);
    expect(await troveRestore('trove-from-agent-enc', String(f['location']), String(f['checksum']), [`--backup-encryption-key=${KEY}`])).toHaveLength(4);
  });
});

/**
 * PostgreSQL: Trove 18's guest runs the tool's pg_basebackup driver as `-U postgres` over the local
 * socket, trusting it (its pg_hba), and archives WAL into /var/lib/postgresql/data/wal_archive.
 * The agent's server does not let postgres in, so Trove's side is a plain PostgreSQL 15 set up as
 * Trove's guest sets it up (local trust, archive_command into wal_archive, an os_admin superuser).
 * The tool's incremental backup calls pg_start_backup(), which PostgreSQL 15 removed: only its
 * full backups are made here; its restore reads the agent's full and incremental backups.
 */
describe.skipIf(!TROVE_SRC)("Trove 18's own backup tool and the agent read each other's PostgreSQL backups", () => {
  const BIN = '/usr/lib/postgresql/15/bin';
  let tmp: string;
  const servers: Array<() => Promise<void>> = [];
  const opened: Datastore[] = [];
  const asPostgres = (file: string, args: string[]) => run('runuser', ['-u', 'postgres', '--', file, ...args]);

  /** A plain server owned by postgres on `pgdata`, local trust only, archiving into `archive`; returns its socket dir and port. */
  async function plainServer(pgdata: string, archive: string | null, extra: string[] = [], user = 'postgres'): Promise<{ host: string; port: number }> {
    const host = join(tmp, `sock-${servers.length}`);
    mkdirSync(host);
    await run('chown', ['postgres:postgres', host]);
    const port = await freePort();
    writeFileSync(join(pgdata, 'pg_hba.check.conf'), 'local all all trust\nlocal replication all trust\n');
    const settings = [
      // The tool's pg_basebackup asks for a spread checkpoint: over a minute of silence on an idle
      // server, and Swift's proxy drops the PUT it already opened (client_timeout). Spread over nothing here.
      'checkpoint_completion_target=0',
      `port=${port}`, 'listen_addresses=', `unix_socket_directories=${host}`, `hba_file=${join(pgdata, 'pg_hba.check.conf')}`,
      ...(archive ? ['archive_mode=on', `archive_command=test ! -f ${archive}/%f && cp %p ${archive}/%f`] : []), ...extra,
    ];
    await run('chown', ['-R', 'postgres:postgres', pgdata]);
    const logFile = join(tmp, `server-${servers.length}.log`);
    const fd = openSync(logFile, 'a');
    const server = spawn(join(BIN, 'postgres'), ['-D', pgdata, ...settings.flatMap((x) => ['-c', x])], { ...postgresIds, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    const exited = new Promise((r) => server.once('exit', r));
    servers.push(async () => {
      server.kill('SIGINT');
      await exited;
    });
    for (let i = 0; ; i++) {
      const c = client({ host, port }, user, undefined, 'postgres');
      if (await c.connect().then(() => c.end().then(() => true), () => false)) break;
      if (i > 600 || server.exitCode !== null) throw new Error(`postgres did not start: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return { host, port };
  }

  let postgresIds: { uid: number; gid: number };
  beforeAll(async () => {
    postgresIds = { uid: Number((await run('id', ['-u', 'postgres'])).stdout), gid: Number((await run('id', ['-g', 'postgres'])).stdout) };
    tmp = mkdtempSync(join(tmpdir(), 'ga-trovetool-pg-'));
    chmodSync(tmp, 0o755);
  });
  afterAll(async () => {
    for (const stop of servers) await stop();
    for (const ds of opened) await ds.lifecycle.close().catch(() => {});
    if (tmp && !process.env['GA_KEEP_AGENT']) rmSync(tmp, { recursive: true, force: true });
  });


  it("the agent restores a full backup Trove's tool made", async () => {
    const guest = join(tmp, 'trove-guest');
    const pgdata = join(guest, 'pgdata');
    const archive = join(guest, 'wal_archive');
    mkdirSync(pgdata, { recursive: true });
    mkdirSync(archive);
    await run('chown', ['-R', 'postgres:postgres', guest]);
    await asPostgres(join(BIN, 'initdb'), ['-D', pgdata, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8']);
    const at = await plainServer(pgdata, archive);
    const c = client(at, 'postgres', undefined, 'postgres');
    await c.connect();
    await c.query("CREATE ROLE os_admin SUPERUSER LOGIN PASSWORD 'trove-made'");
    await c.query('CREATE DATABASE shop');
    await c.end();
    const shop = client(at, 'postgres');
    await shop.connect();
    await shop.query('CREATE TABLE items (id int PRIMARY KEY, name text)');
    await shop.query("INSERT INTO items VALUES (1, 'apple'), (2, 'pear')");
    await shop.end();

    const id = randomUUID();
    const out = await runTroveTool('pg_basebackup', ['--backup', `--backup-id=${id}`, `--pg-wal-archive-dir=${archive}`, '--swift-extra-metadata=datastore:postgresql,datastore_version:15'], [],
      { PGHOST: at.host, PGPORT: String(at.port) });
    const made = saved(out);
    expect(made.location).toBe(`${ks.storageUrl}/database_backups/${id}.tar.gz`);

    const a = await agentPg(join(tmp, 'agent-from-trove'), opened);
    await a.ds.lifecycle.prepare(pgRequest({ id, location: made.location, checksum: made.checksum }), ctx(), service(a.ds, null, '15').svc.fetcher(caller, null));
    const want = [{ id: 1, name: 'apple' }, { id: 2, name: 'pear' }];
    expect(await itemsAt(agentClient(a))).toEqual(want);
    const version = (await run(join(BIN, 'postgres'), ['--version'])).stdout.trim();
    await record('postgresql-full', made, want, null, version);
  });

  it("Trove's tool restores the agent's full and incremental backups, and Trove's recovery replays them", async () => {
    const a = await agentPg(join(tmp, 'agent-source'), opened);
    await a.ds.lifecycle.prepare(pgRequest(null), ctx());
    const c = agentClient(a, 'postgres');
    await c.connect();
    await c.query('CREATE DATABASE shop');
    await c.end();
    const shop = agentClient(a);
    await shop.connect();
    await shop.query('CREATE TABLE items (id int PRIMARY KEY, name text)');
    await shop.query("INSERT INTO items VALUES (1, 'apple'), (2, 'pear')");
    await shop.end();
    const { svc, updates } = service(a.ds, null, '15');
    await svc.create({ id: randomUUID(), datastore: 'postgresql', datastoreVersion: '15' }, caller, ctx());
    const f = updates.at(-1)!;
    expect(f, JSON.stringify(f)).toMatchObject({ state: 'COMPLETED' });
    const more = agentClient(a);
    await more.connect();
    await more.query("INSERT INTO items VALUES (3, 'plum')");
    await more.end();
    await svc.create({ id: randomUUID(), datastore: 'postgresql', datastoreVersion: '15', parent: { location: String(f['location']), checksum: String(f['checksum']) } }, caller, ctx());
    const i = updates.at(-1)!;
    expect(i, JSON.stringify(i)).toMatchObject({ state: 'COMPLETED' });

    // Trove's guest: its volume at /var/lib/postgresql/data holds pgdata and wal_archive; the tool restores into both.
    const volume = join(tmp, 'trove-restore');
    const pgdata = join(volume, 'data', 'pgdata');
    const archive = join(volume, 'data', 'wal_archive');
    mkdirSync(pgdata, { recursive: true });
    mkdirSync(archive);
    const out = await runTroveTool('pg_basebackup', ['--nobackup', `--restore-from=${i['location']}`, `--restore-checksum=${i['checksum']}`, '--pg-wal-archive-dir', '/var/lib/postgresql/data/wal_archive'],
      [[volume, '/var/lib/postgresql']]);
    expect(toolRestored(out), out.slice(-2000)).toBe(true);
    // Then, as Trove's guest: recovery.signal, its template's restore_command, the data given to postgres.
    writeFileSync(join(pgdata, 'recovery.signal'), '');
    chmodSync(pgdata, 0o700);
    // The agent keeps postgres locked (NOLOGIN); its os_admin comes in through the trust rules.
    const at = await plainServer(pgdata, null, [`restore_command=cp ${archive}/%f "%p"`], 'os_admin');
    expect(await itemsAt(client(at, 'os_admin'))).toEqual([{ id: 1, name: 'apple' }, { id: 2, name: 'pear' }, { id: 3, name: 'plum' }]);
  });
});

/**
 * Backups Trove's tool made here (test/fixtures/backup/trove-18, recorded by the tests above with
 * GA_TROVE_CAPTURE set), put back into Swift as the tool left them, so that the agent's side of
 * the interop runs everywhere, CI included, where openstack/trove is not checked out.
 */
describe("backups Trove 18's own tool made, recorded, are restored by the agent", () => {
  const backups = recorded();
  const find = (name: string): RecordedBackup => {
    const r = backups.find((b) => b.name === name);
    if (!r) throw new Error(`no recorded backup ${name} in ${FIXTURES}`);
    return r;
  };
  const at = { storageUrl: ks.storageUrl, token: ks.userToken };
  let tmp: string;
  const opened: Datastore[] = [];
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'ga-trove-recorded-'));
    // The PostgreSQL server runs as postgres under it.
    chmodSync(tmp, 0o755);
  });
  afterAll(async () => {
    for (const ds of opened) await ds.lifecycle.close().catch(() => {});
    if (tmp && !process.env['GA_KEEP_AGENT']) rmSync(tmp, { recursive: true, force: true });
  });

  it('holds MariaDB full, incremental and .enc backups and a PostgreSQL full one, with their metadata', () => {
    expect(backups.map((b) => b.name).sort()).toEqual(['mariadb-full', 'mariadb-full-encrypted', 'mariadb-incremental', 'postgresql-full']);
    expect(find('mariadb-incremental').meta).toMatchObject({ 'parent-location': `{storage}/database_backups/${find('mariadb-full').object}`, 'parent-checksum': find('mariadb-full').checksum });
    expect(find('postgresql-full').meta).toHaveProperty('stop-wal-file');
  });

  it('MariaDB: the full backup, and the incremental one applied over its parent', async () => {
    const full = await replay(find('mariadb-full'), at);
    const inc = await replay(find('mariadb-incremental'), at);
    expect(await rows(await agentRestore(join(tmp, 'full'), opened, full.location, full.checksum))).toEqual(find('mariadb-full').rows);
    expect(await rows(await agentRestore(join(tmp, 'incremental'), opened, inc.location, inc.checksum))).toEqual(find('mariadb-incremental').rows);
  });

  it("MariaDB: the backup the tool named .enc when given a key (it writes it in the clear) restores with the key and without one", async () => {
    const r = find('mariadb-full-encrypted');
    expect(r.object).toMatch(/\.xbstream\.gz\.enc$/);
    const enc = await replay(r, at);
    expect(await rows(await agentRestore(join(tmp, 'enc-key'), opened, enc.location, enc.checksum, r.key))).toEqual(r.rows);
    expect(await rows(await agentRestore(join(tmp, 'enc-nokey'), opened, enc.location, enc.checksum, null))).toEqual(r.rows);
  });

  it('PostgreSQL: the full backup, with the WAL it fetched', async () => {
    const r = find('postgresql-full');
    const full = await replay(r, at);
    const a = await agentPg(join(tmp, 'pg'), opened);
    await a.ds.lifecycle.prepare(pgRequest({ id: 'pg', location: full.location, checksum: full.checksum }), ctx(), service(a.ds, null, '15').svc.fetcher(caller, null));
    expect(await itemsAt(agentClient(a))).toEqual(r.rows);
  });
});
