/**
 * Interop with Trove's own backup tool (upstream openstack/trove `backup/`,
 * the program Trove 18's guest runs in its backup container), in both
 * directions, through the real Keystone v3 and the Keystone-authenticated
 * Swift of setup/keystone.ts: a backup Trove's tool made of the agent's
 * MariaDB (full, then incremental on top) restored by the agent's
 * prepare(backup_info); and the agent's backups (full + incremental, and an
 * encrypted one) restored by Trove's tool.
 *
 * Debian does not package the tool and its code is not ours to vendor, so
 * this file runs only when GA_TROVE_SRC names a checkout of openstack/trove
 * (tag 18.0.0: `git clone --branch 18.0.0 https://opendev.org/openstack/trove`);
 * without it the tests are reported skipped. The tool runs with Debian's
 * python3 and its oslo/keystoneauth1/swiftclient packages (python3-trove's
 * dependencies), as root, in a private mount namespace where /var/lib/mysql
 * is an empty tmpfs: it creates its incremental scratch directory there, and
 * that path belongs to the machine's own MariaDB. Its command line carries
 * the token and the database password, as Trove's guest passes them.
 */
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createMariadbDatastore } from '../../../datastores/mariadb/index.ts';
import { MARIABACKUP } from '../../../datastores/mysql/backup.ts';
import { connectSql } from '../../../datastores/mysql/sql.ts';
import { createBackupService, type CallerContext } from '../../../src/backup/service.ts';
import type { BackupInfo, Datastore, OpContext, PrepareRequest } from '../../../src/datastore.ts';
import { freePort } from '../harness/ports.ts';

const TROVE = process.env['GA_TROVE_SRC'];
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

describe.skipIf(!TROVE)("Trove 18's own backup tool and the agent read each other's MariaDB backups", () => {
  let tmp: string;
  let srcDir: string;
  let home: string;
  let source: Datastore;
  const opened: Datastore[] = [];

  function service(ds: Datastore, encryptionKey: string | null) {
    const updates: Record<string, unknown>[] = [];
    const svc = createBackupService({
      datastore: ds, updateBackup: async (_id, f) => void updates.push({ ...f }), usedGb: async () => 0.01,
      container: 'database_backups', segmentMaxSize: 2 * 1024 ** 3, swiftUrl: null,
      keystone: { authUrl: ks.authUrl, regionName: 'RegionOne', applicationCredential: null },
      datastoreVersion: '10.11', encryptionKey, compression: 'gzip',
    });
    return { svc, updates };
  }

  /**
   * python3 backup/main.py with Trove 18's guest's arguments (mysql_common/service.py), in a
   * private mount namespace; its mariabackup finds the agent's server through $HOME/.my.cnf.
   */
  async function troveTool(args: string[], varLibMysql?: string): Promise<string> {
    // Trove's guest mounts its /var/lib/mysql into the tool's container, and the tool restores into
    // /var/lib/mysql/data whatever --db-datadir says (main.py never passes it on) and unpacks each
    // incremental in /var/lib/mysql/<checksum> to rename files from there: one directory stands in.
    const mounts = 'if [ -n "$GA_VARLIB" ]; then mount --bind "$GA_VARLIB" /var/lib/mysql; else mount -t tmpfs none /var/lib/mysql; fi';
    const argv = [
      '--mount', '--propagation', 'private', 'sh', '-c', `${mounts} && exec "$@"`, 'sh',
      '/usr/bin/python3', join(TROVE!, 'backup', 'main.py'),
      '--storage-driver=swift', '--driver=mariabackup',
      `--os-token=${ks.userToken}`, `--os-auth-url=${ks.authUrl}`, `--os-tenant-id=${ks.projectId}`,
      ...args,
    ];
    const r = await run('unshare', argv, { env: { ...process.env, HOME: home, GA_VARLIB: varLibMysql ?? '' }, maxBuffer: 64 * 1024 * 1024 });
    // oslo.log colours its lines.
    return (r.stdout + r.stderr).replace(/\x1b\[[0-9;]*m/g, '');
  }

  /** Location and checksum of the object the tool logged ("Backup successfully, checksum: X, location: Y"). */
  function saved(out: string): { location: string; checksum: string } {
    const m = /Backup successfully, checksum: ([0-9a-f]{32}), location: (\S+)/.exec(out);
    expect(m, out.slice(-2000)).not.toBeNull();
    return { checksum: m![1]!, location: m![2]! };
  }

  async function rows(stateDir: string): Promise<Array<{ id: number; name: string }>> {
    const db = admin(stateDir);
    try {
      return await db.query('SELECT id, name FROM shop.items ORDER BY id');
    } finally {
      await db.end();
    }
  }

  async function insert(values: string): Promise<void> {
    const db = admin(srcDir);
    await db.query(`INSERT INTO shop.items VALUES ${values}`);
    await db.end();
  }

  /** The agent's restore: a new MariaDB prepared from the backup, as prepare(backup_info) does. */
  async function agentRestore(name: string, location: string, checksum: string): Promise<string> {
    const dir = join(tmp, name);
    const ds = mariadb(dir, await freePort());
    opened.push(ds);
    await ds.lifecycle.prepare(prepareRequest({ id: name, location, checksum }), ctx(), service(ds, KEY).svc.fetcher(caller, null));
    return dir;
  }

  /** Trove's restore into an empty directory, then the rows read from a plain mariadbd started on it. */
  async function troveRestore(name: string, location: string, checksum: string, extra: string[] = []): Promise<Array<{ id: number; name: string }>> {
    const varLib = join(tmp, name);
    const dir = join(varLib, 'data');
    mkdirSync(dir, { recursive: true });
    const out = await troveTool(['--nobackup', `--restore-from=${location}`, `--restore-checksum=${checksum}`, ...extra], varLib);
    expect(out, out.slice(-2000)).toMatch(/Restore successfully/);
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
    mkdirSync(home);
    // Where Trove's mariabackup connects (its --host=localhost: the socket) and reads the data dir.
    writeFileSync(join(home, '.my.cnf'), `[client]\nsocket = ${join(srcDir, 'run', 'mysqld.sock')}\n[mariabackup]\ndatadir = ${join(srcDir, 'data')}\n`);
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
    const dir = await agentRestore('agent-from-trove-full', troveFull.location, troveFull.checksum);
    expect(await rows(dir)).toEqual([{ id: 1, name: 'apple' }, { id: 2, name: 'pear' }]);
  });

  it("restores Trove's incremental backup with its parent", async () => {
    await insert("(3, 'plum')");
    const id = randomUUID();
    const inc = saved(await troveTool([...toolArgs(), `--backup-id=${id}`, '--incremental', `--parent-location=${troveFull.location}`, `--parent-checksum=${troveFull.checksum}`]));
    const dir = await agentRestore('agent-from-trove-inc', inc.location, inc.checksum);
    expect(await rows(dir)).toEqual([{ id: 1, name: 'apple' }, { id: 2, name: 'pear' }, { id: 3, name: 'plum' }]);
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
