/**
 * The MySQL/MariaDB datastore: a plain object satisfying src/datastore.ts,
 * built from the runner (systemd unit or a supervised mariadbd or mysqld), the admin
 * connection (os_admin over the unix socket) and the option files.
 */
import { basename, dirname, join } from 'node:path';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import type { BackupFetcher, BackupLink, Datastore, DatastoreOptions, OpContext, PrepareRequest, Root, ServiceStatus, User } from '../../src/datastore.ts';
import { BadRequestError, GuestError, OperationNotSupportedError } from '../../src/errors.ts';
import { exec } from '../../src/process/exec.ts';
import { createProcessRunner } from '../../src/service/process.ts';
import { explainingStarts, type ServiceRunner } from '../../src/service/runner.ts';
import { createSystemdRunner } from '../../src/service/systemd.ts';
import { createMysqlAdmin } from './admin.ts';
import { createMariabackup, restoreChain } from './backup.ts';
import { adminTrailer, createMysqldump, isLogicalBackup, loader, mysqlTools } from './dump.ts';
import { validatePassword } from './names.ts';
import { createMysqlReplication } from './replication.ts';
import {
  dataDirInitialized, errorLogMark, generatePassword, mysqlPaths, readAdminPassword, readOverrides, removeOverrides, serverErrorsSince,
  writeAdminCnf, writeConfig, writeOptionFile, writeOverrides, type MysqlPaths,
} from './server.ts';
import { connectSql, type SqlClient } from './sql.ts';
import { versionMatches } from '../../src/version.ts';

/** The servers and MariaDB's system-table upgrader (Debian's mariadb-server; a MySQL image's mysql-server). */
const MARIADBD = '/usr/sbin/mariadbd';
const MYSQLD = '/usr/sbin/mysqld';
const MARIADB_UPGRADE = '/usr/bin/mariadb-upgrade';

export type ServerFlavor = 'mariadb' | 'mysql';

/**
 * Which server a program is: MariaDB's is named mariadbd (Debian's /usr/sbin/mysqld is a link to
 * it), anything else is Oracle's MySQL. Where they differ: how a data directory is made, the
 * root account it starts with, the system-table upgrade, the backup tool.
 */
export function serverFlavor(binary: string): ServerFlavor {
  let real = binary;
  try {
    real = realpathSync(binary);
  } catch {
    // Not there (yet): its name is all there is to go by.
  }
  return basename(real) === 'mariadbd' ? 'mariadb' : 'mysql';
}

export const DEFAULT_PROCESS_PORT = 13306;

function strings(v: unknown, dflt: string[]): string[] {
  return Array.isArray(v) ? v.map(String) : dflt;
}

export function createMysql(opts: DatastoreOptions, name: 'mysql' | 'mariadb' = 'mysql'): Datastore {
  const { log, section, runner: runnerKind, stateDir, events } = opts;
  const mountPoint = typeof section['mount_point'] === 'string' ? section['mount_point'] : '/var/lib/mysql';
  const paths: MysqlPaths = mysqlPaths(runnerKind, stateDir, mountPoint);
  const port = opts.port ?? (runnerKind === 'process' ? DEFAULT_PROCESS_PORT : 3306);
  const asRoot = process.getuid?.() === 0;
  const server = typeof section['server_binary'] === 'string' && section['server_binary'] !== '' ? section['server_binary'] : existsSync(MARIADBD) ? MARIADBD : MYSQLD;
  const flavor = serverFlavor(server);
  const product = flavor === 'mariadb' ? 'MariaDB' : 'MySQL';
  /** mysql, mysqldump and mysqlbinlog: MySQL's logical backups and restores. */
  const tools = mysqlTools(typeof section['client_bin_dir'] === 'string' && section['client_bin_dir'] !== '' ? section['client_bin_dir'] : '/usr/bin');
  /** Extra server options for the next start (an init file, GTIDs on for a restore's load). */
  let oneOffArgs: string[] = [];

  let adminSql: SqlClient | null = null;
  const sql = (): SqlClient => {
    if (!adminSql) {
      const password = readAdminPassword(paths);
      if (password === null) throw new GuestError('The database has not been prepared: no admin credentials yet.');
      // The agent's statements carry passwords: never into the general or slow log.
      adminSql = connectSql({ socketPath: paths.socket, user: 'os_admin', password, sessionInit: 'SET SESSION sql_log_off = 1, SESSION long_query_time = 31536000' });
    }
    return adminSql;
  };
  const resetSql = async (): Promise<void> => {
    const s = adminSql;
    adminSql = null;
    await s?.end().catch(() => {});
  };

  const ping = async (): Promise<boolean> => {
    const password = readAdminPassword(paths);
    // Before secure(), root over the socket (unix_socket auth) is the only way in.
    const probe = connectSql({ socketPath: paths.socket, user: password === null ? 'root' : 'os_admin', password });
    try {
      await probe.query('SELECT 1');
      return true;
    } catch {
      return false;
    } finally {
      await probe.end().catch(() => {});
    }
  };

  /** The installed server's version, as `mariadbd --version` reports it (10.11.14, 9.7.4, …). */
  const serverVersion = async (ctx: OpContext): Promise<string> => {
    const { stdout } = await exec(server, ['--version'], { signal: ctx.signal });
    const v = /Ver\s+(\d+(?:\.\d+)*)/.exec(stdout)?.[1];
    if (!v) throw new GuestError(`could not read the server's version from ${JSON.stringify(stdout.trim().slice(0, 200))}`);
    return v;
  };

  const waitReady = async (ctx: OpContext): Promise<void> => {
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      if (ctx.signal.aborted) throw new GuestError('aborted while waiting for the database server');
      if (runner.state() === 'crashed' || runner.state() === 'stopped') throw new GuestError(`the database server exited; see ${paths.errorLog}`);
      // mariadbd creates its socket once it accepts connections: until then a stat every 20 ms
      // (a login every 250 ms left up to a quarter of a second between a ready server and what waits for it).
      if (!existsSync(paths.socket)) {
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      if (await ping()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new GuestError(`the database server did not answer within 120 s; see ${paths.errorLog}`);
  };

  const runner: ServiceRunner = explainingStarts(
    runnerKind === 'process'
      ? createProcessRunner({
          log: log.child({ component: basename(server) }),
          waitReady,
          command: () => {
            const files = join(dirname(paths.dataDir), 'files');
            if (flavor === 'mysql') mkdirSync(files, { recursive: true, mode: 0o750 });
            return {
              file: server,
              args: [
                `--defaults-file=${paths.configFile}`,
                `--datadir=${paths.dataDir}`,
                `--socket=${paths.socket}`,
                `--pid-file=${paths.pidFile}`,
                `--port=${port}`,
                '--bind-address=127.0.0.1',
                `--log-error=${paths.errorLog}`,
                ...(asRoot ? ['--user=root'] : []),
                // MySQL's own defaults reach outside the state dir: the X protocol on port 33060 for
                // every server, and file import/export in /var/lib/mysql-files (refusing to start without it).
                ...(flavor === 'mysql' ? ['--mysqlx=OFF', `--secure-file-priv=${files}`] : []),
                ...oneOffArgs,
              ],
            };
          },
        })
      : createSystemdRunner(typeof section['service_name'] === 'string' ? section['service_name'] : flavor, exec),
    () => errorLogMark(paths),
    (mark) => serverErrorsSince(paths, mark),
  );

  /** Trove's MySQL guest logs (mysql_common/manager.py get_datastore_log_defs); every variable is dynamic. */
  const logDir = join(dirname(paths.dataDir), 'log');
  const longQuerySec = (typeof section['guest_log_long_query_time'] === 'number' ? section['guest_log_long_query_time'] : 1000) / 1000;
  const LOGS: Record<string, { enable: (file: string) => Record<string, string | number>; disable: Record<string, string> }> = {
    general: { enable: (f) => ({ general_log: 'on', general_log_file: f, log_output: 'file' }), disable: { general_log: 'off' } },
    slow_query: { enable: (f) => ({ slow_query_log: 'on', slow_query_log_file: f, long_query_time: longQuerySec }), disable: { slow_query_log: 'off' } },
  };
  const logFile = (n: string) => join(logDir, `${n}.log`);
  const logConf = (n: string) => join(paths.confDir, `guestagent-log-${n}.cnf`);

  const admin = createMysqlAdmin({
    sql,
    ignoreUsers: strings(section['ignore_users'], ['os_admin', 'root']),
    ignoreDbs: strings(section['ignore_dbs'], ['mysql', 'information_schema', 'performance_schema', 'sys', 'lost+found']),
  });

  async function initDataDir(ctx: OpContext): Promise<void> {
    mkdirSync(paths.dataDir, { recursive: true, mode: 0o750 });
    mkdirSync(dirname(paths.socket), { recursive: true, mode: 0o755 });
    if (dataDirInitialized(paths)) return;
    if (flavor === 'mysql') {
      await initMysqlDataDir(ctx);
      return;
    }
    // The bootstrap server writes its errors to the error log the option files name, not to stderr.
    const mark = errorLogMark(paths);
    try {
      await exec(
        '/usr/bin/mariadb-install-db',
        [
          `--defaults-file=${paths.configFile}`,
          `--datadir=${paths.dataDir}`,
          '--auth-root-authentication-method=socket',
          '--skip-test-db',
          // Go on when the guest's own hostname does not resolve (a cloud image's /etc/hosts often
          // lacks it; a minimal one may lack localhost): the script would stop, asking for --force.
          // Only host-named grant entries are affected, and secure() keeps root on localhost alone.
          '--force',
          // The distribution's unit runs mariadbd as mysql: its data must be mysql's (found by the real-boot test).
          ...(runnerKind === 'systemd' ? ['--user=mysql'] : asRoot ? ['--user=root'] : []),
        ],
        { signal: ctx.signal, log: ctx.log, timeoutMs: 300_000 },
      );
    } catch (err) {
      const why = serverErrorsSince(paths, mark);
      if (!why) throw err;
      throw new GuestError(`could not initialize the MariaDB data directory: ${why} (${(err as Error).message}; see ${paths.errorLog})`, { cause: err });
    }
    if (runnerKind === 'systemd') await exec('/usr/bin/chown', ['-R', 'mysql:mysql', paths.dataDir], { signal: ctx.signal });
  }

  /**
   * MySQL makes its data directory itself (`mysqld --initialize-insecure`), with a root@localhost
   * that has no password, reachable over the network once the server starts. So the statements
   * secure() would run come as the initialization's init file instead: os_admin with its password,
   * root@localhost locked with a password nobody keeps (Trove's root is root@'%', enable_root's).
   * MySQL makes no anonymous users and no test database.
   */
  async function initMysqlDataDir(ctx: OpContext): Promise<void> {
    const password = generatePassword();
    // Generated by us, so literals are safe; checked all the same, as the file is SQL text.
    const lockedRoot = generatePassword();
    if (!/^[A-Za-z0-9_-]+$/.test(password + lockedRoot)) throw new GuestError('generated password has unexpected characters');
    const initFile = join(paths.confDir, 'guestagent-init.sql');
    writeFileSync(
      initFile,
      `CREATE USER 'os_admin'@'localhost' IDENTIFIED BY '${password}';\n` +
        "GRANT ALL PRIVILEGES ON *.* TO 'os_admin'@'localhost' WITH GRANT OPTION;\n" +
        `ALTER USER 'root'@'localhost' IDENTIFIED BY '${lockedRoot}' ACCOUNT LOCK;\n`,
      { mode: 0o600 },
    );
    chmodSync(initFile, 0o600);
    const mark = errorLogMark(paths);
    try {
      if (runnerKind === 'systemd') await exec('/usr/bin/chown', ['mysql:mysql', initFile, paths.dataDir], { signal: ctx.signal });
      await exec(
        server,
        [
          `--defaults-file=${paths.configFile}`,
          '--initialize-insecure',
          `--datadir=${paths.dataDir}`,
          `--init-file=${initFile}`,
          `--log-error=${paths.errorLog}`,
          ...(runnerKind === 'systemd' ? ['--user=mysql'] : asRoot ? ['--user=root'] : []),
        ],
        { signal: ctx.signal, log: ctx.log, timeoutMs: 300_000 },
      );
    } catch (err) {
      const why = serverErrorsSince(paths, mark);
      throw new GuestError(`could not initialize the MySQL data directory: ${why ?? (err as Error).message} (see ${paths.errorLog})`, { cause: err });
    } finally {
      rmSync(initFile, { force: true });
    }
    writeAdminCnf(paths, password);
  }

  /** Trove's secure(): an os_admin superuser with a random password, no anonymous users, no test db; root only over the socket. */
  async function secure(ctx: OpContext): Promise<void> {
    if (readAdminPassword(paths) !== null) return;
    const password = generatePassword();
    const root = connectSql({ socketPath: paths.socket, user: 'root', password: null });
    try {
      await root.query("CREATE USER IF NOT EXISTS 'os_admin'@'localhost' IDENTIFIED BY ?", [password]);
      await root.query("ALTER USER 'os_admin'@'localhost' IDENTIFIED BY ?", [password]);
      await root.query("GRANT ALL PRIVILEGES ON *.* TO 'os_admin'@'localhost' WITH GRANT OPTION");
      for (const u of await root.query<{ User: string; Host: string }>("SELECT User, Host FROM mysql.user WHERE User = '' OR (User = 'root' AND Host NOT IN ('localhost'))")) {
        await root.query('DROP USER ?@?', [u.User, u.Host]);
      }
      await root.query('DROP DATABASE IF EXISTS test');
      writeAdminCnf(paths, password);
    } finally {
      await root.end().catch(() => {});
    }
    ctx.log.info('database secured: os_admin created, anonymous users and test database removed');
  }

  /**
   * A restored data directory carries the source instance's os_admin: give it
   * this instance's password (Trove's reset_password_for_restore) and leave the
   * server running. The statements go in an init file the server runs as it
   * starts, before it accepts connections: one start instead of a start without
   * grant checks, a stop and a start (Trove also restores with an init file).
   */
  async function startWithNewAdminPassword(ctx: OpContext): Promise<void> {
    const password = generatePassword();
    // Generated by us, so a literal is safe; checked all the same, as the file is SQL text.
    if (!/^[A-Za-z0-9_-]+$/.test(password)) throw new GuestError('generated password has unexpected characters');
    const lit = `'${password}'`;
    const initFile = join(paths.confDir, 'guestagent-admin-init.sql');
    writeFileSync(
      initFile,
      // Passwords never into the general or slow log, should the configuration turn them on, nor
      // into the binary log (a replica or a restored incremental backup would take this instance's
      // os_admin password from it).
      'SET SESSION sql_log_off = 1, SESSION long_query_time = 31536000, SESSION sql_log_bin = 0;\n' +
        `CREATE USER IF NOT EXISTS 'os_admin'@'localhost' IDENTIFIED BY ${lit};\n` +
        `ALTER USER 'os_admin'@'localhost' IDENTIFIED BY ${lit};\n` +
        "GRANT ALL PRIVILEGES ON *.* TO 'os_admin'@'localhost' WITH GRANT OPTION;\n",
      { mode: 0o600 },
    );
    chmodSync(initFile, 0o600);
    // Written first: the readiness probe logs in as os_admin with it, whoever root is in the restored data.
    writeAdminCnf(paths, password);
    try {
      if (runnerKind === 'systemd') await exec('/usr/bin/chown', ['mysql:mysql', initFile], { signal: ctx.signal });
      await startWithOptions({ 'init-file': initFile }, ctx);
    } finally {
      rmSync(initFile, { force: true });
    }
    // The server logs a failing init-file statement and starts anyway: check the password took.
    try {
      await sql().query('SELECT 1');
    } catch (err) {
      throw new GuestError(`could not give os_admin a new password after the restore: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Starts the server with options for this start only (an init file, GTIDs on for a restore's load). */
  async function startWithOptions(options: Record<string, string>, ctx: OpContext): Promise<void> {
    for (const [k, v] of Object.entries(options)) if (!/^[a-z-]+$/.test(k) || /[\n\r]/.test(v)) throw new GuestError(`bad server option ${k}`);
    oneOffArgs = Object.entries(options).map(([k, v]) => `--${k}=${v}`);
    await resetSql();
    // The distribution's unit takes no arguments from us: the same settings as an option file,
    // removed again below (found by the real boot's restore).
    const oneOff = join(paths.confDir, 'zzzz-guestagent-oneoff.cnf');
    try {
      if (runnerKind === 'systemd') {
        writeOptionFile(oneOff, `[mysqld]\n${Object.entries(options).map(([k, v]) => `${k}=${v}\n`).join('')}`);
        // A restored or carried-over data directory is root's or another image's: the unit runs the server as mysql.
        await exec('/usr/bin/chown', ['-R', 'mysql:mysql', paths.dataDir], { signal: ctx.signal });
      }
      await runner.start(ctx);
    } finally {
      oneOffArgs = [];
      rmSync(oneOff, { force: true });
    }
  }

  /**
   * Loads a chain of logical backups (datastores/mysql/dump.ts) into a fresh
   * data directory: each object through the mysql client, oldest first. The
   * full backup brings the source's accounts, os_admin's password with them:
   * each load ends, in its own session, by giving os_admin a new password
   * (adminTrailer), so no restart is needed for it. Incrementals replay GTIDs:
   * the server loads them with GTIDs on, whatever its configuration says, and
   * restarts afterwards with its own. A failure stops the server and empties
   * the data directory: nothing half-loaded is left to start.
   */
  async function loadLogicalChain(chain: BackupLink[], fetcher: BackupFetcher, ctx: OpContext): Promise<void> {
    const gtids: Record<string, string> = chain.length > 1 ? { 'gtid-mode': 'ON', 'enforce-gtid-consistency': 'ON' } : {};
    const trailer = join(paths.confDir, 'guestagent-load-trailer.sql');
    try {
      await initDataDir(ctx);
      await startWithOptions(gtids, ctx);
      for (const [i, link] of chain.entries()) {
        const password = generatePassword();
        writeFileSync(trailer, adminTrailer(password), { mode: 0o600 });
        chmodSync(trailer, 0o600);
        try {
          await fetcher.restoreInto(link.location, link.checksum, loader(tools, paths.adminCnf, trailer), ctx);
        } finally {
          rmSync(trailer, { force: true });
        }
        writeAdminCnf(paths, password);
        await resetSql();
        ctx.log.info({ location: link.location, part: i + 1, of: chain.length }, 'logical backup loaded');
      }
      if (chain.length > 1) await runner.restart(ctx);
      await sql().query('SELECT 1');
    } catch (err) {
      rmSync(trailer, { force: true });
      await resetSql();
      await runner.stop(ctx).catch(() => {});
      rmSync(paths.dataDir, { recursive: true, force: true });
      throw err;
    }
  }

  async function enableRoot(password: string | null): Promise<User> {
    const pw = password === null ? generatePassword() : validatePassword(password);
    const s = sql();
    await s.query("CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY ?", [pw]);
    await s.query("ALTER USER 'root'@'%' IDENTIFIED BY ?", [pw]);
    await s.query("GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION");
    events.rootEnabled?.({ name: 'root', host: '%', password: null, databases: [] });
    return { name: 'root', host: '%', password: pw, databases: [], isRoot: true };
  }

  const status = {
    async status(): Promise<ServiceStatus> {
      if (await ping()) return 'healthy';
      const s = runner.state();
      if (s === 'running') return 'running';
      if (s === 'crashed') return 'crashed';
      return 'shutdown';
    },
  };

  const root: Root = {
    enableRoot: (password) => enableRoot(password),
    async disableRoot() {
      await sql().query("DROP USER IF EXISTS 'root'@'%'");
    },
    async isRootEnabled() {
      const rows = await sql().query<{ n: number }>("SELECT COUNT(*) AS n FROM mysql.user WHERE User = 'root' AND Host != 'localhost'");
      return Number(rows[0]?.n ?? 0) > 0;
    },
  };

  return {
    name,
    mountPoint,
    status,
    admin,
    root,
    backup: flavor === 'mariadb' ? createMariabackup(paths) : createMysqldump({ paths, sql, tools }),
    replication: createMysqlReplication({
      flavor,
      paths,
      sql,
      restart: async (ctx) => {
        await resetSql();
        await runner.restart(ctx);
      },
      strategy: typeof section['replication_strategy'] === 'string' ? section['replication_strategy'] : name === 'mariadb' ? 'MariaDBGTIDReplication' : 'MysqlGTIDReplication',
      datastore: name,
    }),
    upgrade: {
      /**
       * Trove's pre_upgrade: keep what lives outside the data directory (option
       * files, the os_admin credentials) on the data volume, where a new image
       * finds it (post_upgrade). The server keeps running: Trove 18 casts
       * upgrade next and waits for healthy.
       */
      async preUpgrade(ctx) {
        const saveDir = join(dirname(paths.dataDir), 'guestagent-upgrade');
        rmSync(saveDir, { recursive: true, force: true });
        mkdirSync(saveDir, { recursive: true, mode: 0o700 });
        cpSync(paths.configFile, join(saveDir, 'my.cnf'));
        cpSync(paths.confDir, join(saveDir, 'conf.d'), { recursive: true });
        cpSync(paths.adminCnf, join(saveDir, 'os_admin.cnf'));
        ctx.log.info({ save_dir: saveDir }, 'ready for upgrade');
        return { mount_point: mountPoint, save_dir: saveDir, data_dir: paths.dataDir };
      },
      async upgrade(version, ctx) {
        const installed = await serverVersion(ctx);
        if (!versionMatches(version, installed)) {
          throw new GuestError(
            `this guest runs ${product} ${installed}, not datastore version ${version}: its server comes from the image's packages and cannot be swapped in place; rebuild the instance with an image that has ${version}`,
          );
        }
        // The packages may have been updated under the running server: run the installed binary, then bring the system tables up to it.
        await resetSql();
        await runner.restart(ctx);
        // MySQL (8.0.16 and later) upgrades its system tables itself as it starts.
        if (flavor === 'mariadb') await exec(MARIADB_UPGRADE, [`--defaults-extra-file=${paths.adminCnf}`], { signal: ctx.signal, log: ctx.log, timeoutMs: 600_000 });
        ctx.log.info({ installed, datastore_version: version }, 'server restarted and its system tables upgraded');
      },
      /** On the new image: put the saved files back and start the server on the same data. */
      async postUpgrade(info, ctx) {
        const saveDir = typeof info['save_dir'] === 'string' ? info['save_dir'] : join(dirname(paths.dataDir), 'guestagent-upgrade');
        if (!existsSync(join(saveDir, 'my.cnf'))) throw new GuestError(`nothing saved for the upgrade in ${saveDir}`);
        mkdirSync(paths.confDir, { recursive: true });
        mkdirSync(dirname(paths.socket), { recursive: true, mode: 0o755 });
        cpSync(join(saveDir, 'my.cnf'), paths.configFile);
        cpSync(join(saveDir, 'conf.d'), paths.confDir, { recursive: true });
        cpSync(join(saveDir, 'os_admin.cnf'), paths.adminCnf);
        chmodSync(paths.adminCnf, 0o600);
        await runner.start(ctx);
        rmSync(saveDir, { recursive: true, force: true });
      },
    },
    logs: {
      // Trove's SYSTEM log 'error' is the server's error log: always on (no statements, so no passwords, in it).
      defs: () => [...Object.keys(LOGS).map((n) => ({ name: n, type: 'USER' as const, file: logFile(n) })), { name: 'error', type: 'SYS' as const, file: paths.errorLog }],
      async isEnabled(n) {
        if (n === 'error') return true;
        const f = logConf(n);
        return existsSync(f) && /_log = on$/m.test(readFileSync(f, 'utf8'));
      },
      async setEnabled(n, enabled, ctx) {
        if (n === 'error') throw new BadRequestError(`Log '${n}' is a SYSTEM log: the server's error log is always on.`);
        const def = LOGS[n];
        if (!def) throw new BadRequestError(`Log '${n}' is not defined.`);
        mkdirSync(logDir, { recursive: true, mode: 0o750 });
        // The distribution's server runs as mysql; the agent's own child runs as root.
        if (runnerKind === 'systemd') await exec('/usr/bin/chown', ['mysql:mysql', logDir], { signal: ctx.signal });
        const vars = enabled ? def.enable(logFile(n)) : def.disable;
        // Persisted for restarts (read before the user's overrides), applied live: all of them are dynamic.
        writeOptionFile(logConf(n), `[mysqld]\n${Object.entries(vars).map(([k, v]) => `${k} = ${v}`).join('\n')}\n`);
        for (const [k, v] of Object.entries(vars)) await sql().query(`SET GLOBAL ${k} = ?`, [v]);
        ctx.log.info({ log: n, enabled }, 'guest log switched live');
        return false;
      },
    },
    configuration: {
      async updateOverrides(overrides, remove) {
        if (remove) removeOverrides(paths);
        else writeOverrides(paths, { ...readOverrides(paths), ...overrides });
      },
      async applyOverrides(overrides, ctx) {
        for (const [k, v] of Object.entries(overrides)) {
          if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(k)) throw new GuestError(`'${k}' is not a valid variable name`);
          try {
            await sql().query(`SET GLOBAL ${k} = ?`, [typeof v === 'boolean' ? (v ? 1 : 0) : v]);
          } catch (e) {
            // Not dynamic (or unknown): it takes effect at the next restart, as Trove reports.
            ctx.log.warn({ variable: k, err: e }, 'override not applied live');
          }
        }
      },
      async resetConfiguration(contents) {
        writeConfig(paths, contents, flavor);
      },
    },
    lifecycle: {
      async prepare(req: PrepareRequest, ctx: OpContext, fetcher?: BackupFetcher) {
        if (req.backupInfo && !fetcher) throw new OperationNotSupportedError('restore from backup during prepare', name);
        const location = req.backupInfo ? req.backupInfo.location : null;
        if (req.backupInfo && !location) throw new GuestError('backup_info has no location to restore from');
        // What the backup is made of decides how it is restored; refused before anything is stopped or rewritten.
        let logicalChain: BackupLink[] | null = null;
        if (location && fetcher && flavor === 'mysql') {
          logicalChain = await fetcher.chain(location, req.backupInfo!.checksum ?? null, ctx);
          const physical = logicalChain.find((l) => !isLogicalBackup(l.location));
          if (physical) throw new GuestError(`${physical.location} is a physical backup (mariabackup or XtraBackup): a MySQL server here restores only this agent's logical backups (.sql)`);
        } else if (location && isLogicalBackup(location)) {
          throw new GuestError(`${location} is a logical backup of a MySQL server: it cannot be restored into MariaDB`);
        }
        await runner.stop(ctx);
        writeConfig(paths, req.configContents, flavor);
        if (req.overrides && Object.keys(req.overrides).length) writeOverrides(paths, req.overrides);
        if (location && fetcher && logicalChain) {
          rmSync(paths.dataDir, { recursive: true, force: true });
          await loadLogicalChain(logicalChain, fetcher, ctx);
        } else if (location && fetcher) {
          rmSync(paths.dataDir, { recursive: true, force: true });
          mkdirSync(paths.dataDir, { recursive: true, mode: 0o750 });
          mkdirSync(dirname(paths.socket), { recursive: true, mode: 0o755 });
          await restoreChain(paths, fetcher, location, req.backupInfo!.checksum ?? null, ctx);
          await startWithNewAdminPassword(ctx);
        } else {
          await initDataDir(ctx);
          await runner.start(ctx);
        }
        await secure(ctx);
        await resetSql();
        // Root as the backup had it; conductor records it (Trove: report_root).
        if (req.backupInfo && (await root.isRootEnabled(ctx))) events.rootEnabled?.({ name: 'root', host: '%', password: null, databases: [] });
        // As Trove: databases, users and root after the server is up; a failure there is logged, not fatal.
        if (!req.clusterConfig) {
          if (req.databases.length) await admin.createDatabases(req.databases, ctx).catch((err: unknown) => ctx.log.warn({ err }, 'creating databases failed'));
          if (req.users.length) await admin.createUsers(req.users, ctx).catch((err: unknown) => ctx.log.warn({ err }, 'creating users failed'));
          if (req.rootPassword && !req.backupInfo) await enableRoot(req.rootPassword).catch((err: unknown) => ctx.log.error({ err }, 'enabling root failed'));
        }
      },
      async restart(ctx) {
        await resetSql();
        await runner.restart(ctx);
      },
      async stop(o, ctx) {
        await resetSql();
        await runner.stop(ctx, { disableOnBoot: o.doNotStartOnReboot });
      },
      async startWithConfChanges(contents, ctx) {
        if (contents !== null) writeConfig(paths, contents, flavor);
        await runner.start(ctx);
      },
      async rebuild(req, ctx) {
        await runner.stop(ctx);
        if (!dataDirInitialized(paths)) {
          throw new GuestError(`no ${name} data directory in ${paths.dataDir}: is the instance's data volume mounted at ${mountPoint}?`);
        }
        if (req.configContents !== null) writeConfig(paths, req.configContents, flavor);
        else if (!existsSync(paths.configFile)) throw new GuestError('rebuild needs config_contents: this guest has no configuration yet');
        if (req.overrides && Object.keys(req.overrides).length) writeOverrides(paths, req.overrides);
        mkdirSync(dirname(paths.socket), { recursive: true, mode: 0o755 });
        // The old root disk took the os_admin password with it: set a new one, as after a restore.
        await startWithNewAdminPassword(ctx);
        ctx.log.info({ data_dir: paths.dataDir }, 'server back on the rebuilt guest with its data');
      },
      async resume(prepared, ctx) {
        if (prepared && runner.kind === 'process') await runner.start(ctx);
      },
      async close() {
        await resetSql();
        await runner.close();
      },
    },
  };
}

export const createMysqlDatastore = (opts: DatastoreOptions): Datastore => createMysql(opts, 'mysql');
