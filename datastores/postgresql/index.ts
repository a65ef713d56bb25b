/**
 * The PostgreSQL 15 datastore (Debian's). Under the process runner the agent
 * runs initdb and supervises `postgres` itself as the postgres system user
 * (PostgreSQL refuses root), with data, socket and logs under the state dir.
 * The agent connects as its `os_admin` superuser (random password, 0600
 * file) over the unix socket; Trove's users come in over TCP with
 * scram-sha-256; os_admin is refused over the network. Root is the
 * `postgres` role: NOLOGIN until enable_root gives it a password.
 * Under the systemd runner the server is Debian's cluster 15/main
 * (postgresql@15-main, pg_ctlcluster): its /etc/postgresql/15/main/postgresql.conf
 * is the agent's, pointing the cluster at the data directory on the volume,
 * whose own postgresql.conf carries Trove's configuration; the port the
 * server listens on (and names its socket after) is the one that
 * configuration sets.
 * Identifiers are quoted with node-postgres' escapeIdentifier; the few
 * values DDL cannot take as parameters (passwords, encodings) with
 * escapeLiteral; everything else is a bind parameter.
 */
import { randomBytes } from 'node:crypto';
import { accessSync, chmodSync, chownSync, constants as fsc, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import pg from 'pg';
import type { Admin, BackupFetcher, Datastore, DatastoreOptions, OpContext, Page, PageRequest, PrepareRequest, Root, Schema, ServiceStatus, User } from '../../src/datastore.ts';
import { BadRequestError, DatabaseNotFoundError, GuestError, InvalidValueError, OperationNotSupportedError, UserNotFoundError } from '../../src/errors.ts';
import { exec } from '../../src/process/exec.ts';
import { createProcessRunner } from '../../src/service/process.ts';
import { explainingStarts, fileMark, fileTextSince, type ServiceRunner } from '../../src/service/runner.ts';
import { createSystemdRunner } from '../../src/service/systemd.ts';
import { historyOf, restoreChain, walSince, walTar } from './backup.ts';
import { settingFromConf } from './conf-file.ts';
import { createPgReplication, REPL_USER } from './replication.ts';
import { parseReplicaSource } from '../../src/replication.ts';
import { availableParallelism, userInfo } from 'node:os';
import { ZSTD_LEVEL } from '../../src/backup/compress.ts';

const BIN = '/usr/lib/postgresql/15/bin';
/** Debian's configuration directory of cluster 15/main, the one pg_ctlcluster (postgresql@15-main) reads. */
const DEBIAN_CLUSTER = '/etc/postgresql/15/main';
/** Where Debian's pg_ctlcluster has the cluster's server write (the systemd runner's server). */
const CLUSTER_LOG = '/var/log/postgresql/postgresql-15-main.log';
export const DEFAULT_PROCESS_PORT = 15432;

/**
 * What the server said about why it stopped: its messages (`2026-12-04 15:50:00.123 UTC [1234]
 * LOG:  unrecognized configuration parameter "x" in file … line 3`) up to its last FATAL or
 * PANIC, the last three (the FATAL alone often only says "configuration file … contains errors"),
 * joined; without a FATAL or PANIC, its last three ERRORs; null when there are none.
 */
export function serverErrors(lines: string[]): string | null {
  const messages = lines.flatMap((l) => {
    const m = /\b(LOG|WARNING|ERROR|FATAL|PANIC|DETAIL|HINT):\s+(.*)$/.exec(l);
    return m ? [{ level: m[1]!, text: `${m[1]}: ${m[2]!.trim()}` }] : [];
  });
  let end = messages.length;
  while (end > 0 && !['FATAL', 'PANIC'].includes(messages[end - 1]!.level)) end--;
  const found = end > 0 ? messages.slice(0, end) : messages.filter((m) => m.level === 'ERROR');
  return found.length ? found.slice(-3).map((m) => m.text).join('; ') : null;
}
/** trove/common/db/postgresql/models.py: any characters, not ending in whitespace, at most 63. */
const NAME = /^[\u0001-\uFFFF]*[^\s]$/u;

function validName(what: string, v: unknown): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 63 || !NAME.test(v) || v.includes('\0')) {
    throw new InvalidValueError(`'${String(v)}' is not a valid ${what} name.`);
  }
  return v;
}
function validPassword(v: unknown): string {
  if (typeof v !== 'string' || v.length === 0 || v.includes('\0')) throw new InvalidValueError('The password is not valid.');
  return v;
}
const ident = (s: string) => pg.escapeIdentifier(s);
const literal = (s: string) => pg.escapeLiteral(s);

interface PgUser {
  uid: number;
  gid: number;
}
function postgresUser(): PgUser {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'));
  if (!line) throw new GuestError('the postgres system user does not exist (apt-get install postgresql-15)');
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

export function createPostgresDatastore(opts: DatastoreOptions): Datastore {
  const { log, section, runner: runnerKind, stateDir, events } = opts;
  const mountPoint = typeof section['mount_point'] === 'string' ? section['mount_point'] : '/var/lib/postgresql';
  const dataDir = runnerKind === 'process' ? join(stateDir, 'data') : join(mountPoint, 'data');
  const socketDir = runnerKind === 'process' ? join(stateDir, 'run') : '/var/run/postgresql';
  /** Where archive_command copies finished WAL segments (incremental backups are made of them). */
  const walArchive = runnerKind === 'process' ? join(stateDir, 'wal_archive') : join(mountPoint, 'wal_archive');
  /** The server's own log directory: the 'general' guest log is written here once enabled. */
  const logDir = join(dirname(dataDir), 'log');
  for (const p of [walArchive, logDir]) if (!/^[A-Za-z0-9_./-]+$/.test(p)) throw new GuestError(`the path ${p} has characters a postgresql.conf string cannot carry safely`);
  const logsConf = () => join(dataDir, 'guestagent-logs.conf');
  const longQueryMs = typeof section['guest_log_long_query_time'] === 'number' ? section['guest_log_long_query_time'] : 0;
  const secretFile = join(stateDir, 'os_admin.pass');
  const fixedPort = opts.port ?? (runnerKind === 'process' ? DEFAULT_PROCESS_PORT : 5432);
  /**
   * The self-run server gets its port on the command line. Debian's cluster listens where the
   * configuration says (Trove's config_contents, a file of its include_dir, an override: read in
   * PostgreSQL's order, the last `port` wins), and the socket the agent connects to is named after it.
   */
  const port = (): number => {
    if (runnerKind === 'process') return fixedPort;
    const found = Number(settingFromConf(join(dataDir, 'postgresql.conf'), 'port'));
    return Number.isInteger(found) && found > 0 && found < 65536 ? found : fixedPort;
  };
  const ignoreUsers = Array.isArray(section['ignore_users']) ? section['ignore_users'].map(String) : ['os_admin', 'postgres'];
  const ignoreDbs = [...new Set([...(Array.isArray(section['ignore_dbs']) ? section['ignore_dbs'].map(String) : ['os_admin', 'postgres']), 'template0', 'template1'])];
  const owner = postgresUser();
  /** Extra server options for the next start (a trust hba while resetting os_admin after a restore). */
  let oneOff: Array<[string, string]> = [];
  /** Self-run, they go on the command line; Debian's unit takes no options, so there they are a file postgresql.conf reads last. */
  function setOneOff(settings: Array<[string, string]>): void {
    oneOff = settings;
    if (runnerKind !== 'systemd') return;
    const file = join(dataDir, 'guestagent-oneoff.conf');
    if (!settings.length) {
      rmSync(file, { force: true });
      return;
    }
    writeFileSync(file, settings.map(([k, v]) => `${k} = '${v}'`).join('\n') + '\n', { mode: 0o600 });
    chownSync(file, owner.uid, owner.gid);
  }
  /** Settings changed by apply_overrides that only a restart applies (reported as 'restart required'). */
  let pendingRestart: string[] = [];

  const password = (): string | null => (existsSync(secretFile) ? readFileSync(secretFile, 'utf8').trim() : null);
  /**
   * A replica made from a snapshot cannot be given an os_admin password of its own (a standby is
   * read-only and has its source's roles): there the agent logs in as os_admin by peer
   * authentication on the socket, its own system user mapped to os_admin (pg_ident.conf).
   */
  const peerFile = join(stateDir, 'os_admin.peer');
  const peer = (): boolean => existsSync(peerFile);
  async function withClient<T>(fn: (c: pg.Client) => Promise<T>, as: { user: string; password: string | null; database?: string } | null = null): Promise<T> {
    const user = as?.user ?? 'os_admin';
    const pw = as ? as.password : password();
    if (!as && pw === null && !peer()) throw new GuestError('The database has not been prepared: no admin credentials yet.');
    // The agent's own statements carry passwords: they never go to the server log, whatever the general log says.
    const options = '-c log_statement=none -c log_min_duration_statement=-1';
    const c = new pg.Client({ host: socketDir, port: port(), user, password: pw ?? undefined, database: as?.database ?? 'postgres', connectionTimeoutMillis: 5000, options });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end().catch(() => {});
    }
  }
  /** postmaster.pid's status line (its 8th; pg_ctl -w reads it too) says the server accepts connections. */
  function postmasterReady(): boolean {
    try {
      const status = readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[7]?.trim();
      return status === 'ready' || status === 'standby';
    } catch {
      return false;
    }
  }
  /** Up and out of startup/recovery: an authentication refusal counts, "starting up" does not. */
  async function acceptsConnections(): Promise<boolean> {
    const c = new pg.Client({ host: socketDir, port: port(), user: 'postgres', database: 'postgres', password: 'x', connectionTimeoutMillis: 2000 });
    try {
      await c.connect();
      await c.end().catch(() => {});
      return true;
    } catch (e) {
      const code = (e as { code?: string }).code;
      return code !== undefined && code !== '57P03' && !code.startsWith('E');
    }
  }

  const ping = async (): Promise<boolean> => {
    try {
      await withClient((c) => c.query('SELECT 1'));
      return true;
    } catch {
      return false;
    }
  };

  const processRunner =
    runnerKind === 'process'
      ? createProcessRunner({
          log: log.child({ component: 'postgres' }),
          uid: owner.uid,
          gid: owner.gid,
          async waitReady(ctx) {
            const deadline = Date.now() + 120_000;
            for (let i = 0; Date.now() < deadline; i++) {
              if (ctx.signal.aborted) throw new GuestError('aborted while waiting for postgres');
              if (runner.state() !== 'running') throw new GuestError('postgres exited; see its log lines above');
              // The postmaster says when it is ready in postmaster.pid (what pg_ctl -w reads), a cheap file
              // to look at every 20 ms; a login attempt confirms it, and is also tried every 100 ms in case.
              if ((postmasterReady() || i % 5 === 4) && existsSync(join(socketDir, `.s.PGSQL.${port()}`)) && (await acceptsConnections())) return;
              await new Promise((r) => setTimeout(r, 20));
            }
            throw new GuestError('postgres did not open its socket within 120 s');
          },
          command: () => ({
            file: join(BIN, 'postgres'),
            // Runner-owned settings on the command line win over postgresql.conf.
            args: ['-D', dataDir, '-c', `port=${port()}`, '-c', `unix_socket_directories=${socketDir}`, '-c', 'listen_addresses=127.0.0.1', ...oneOff.flatMap(([k, v]) => ['-c', `${k}=${v}`])],
          }),
        })
      : null;
  // A failed start says why in the server's own words: its output (process runner), or the log
  // Debian's pg_ctlcluster gives the cluster (systemd).
  const runner: ServiceRunner = processRunner
    ? explainingStarts(processRunner, () => processRunner.outputLines, (mark) => serverErrors(processRunner.outputSince(mark)))
    : explainingStarts(createSystemdRunner('postgresql@15-main', exec), () => fileMark(CLUSTER_LOG), (mark) => serverErrors(fileTextSince(CLUSTER_LOG, mark).split('\n')));

  /**
   * The data and socket dirs belong to postgres, so every directory above them must let it through.
   * Self-run, they are in the state dir; under systemd, on the mount point (the state dir stays
   * root's own, 0700, and /var/run/postgresql is the package's, made by its tmpfiles).
   */
  function ensureDirs(): void {
    const top = runnerKind === 'process' ? stateDir : mountPoint;
    if (runnerKind === 'process') {
      mkdirSync(stateDir, { recursive: true, mode: 0o711 });
      chmodSync(stateDir, 0o711);
    } else {
      mkdirSync(stateDir, { recursive: true, mode: 0o700 });
      // Under the agent's UMask=0077 a new mount point would be 0700, closed to postgres.
      if (!existsSync(mountPoint)) mkdirSync(mountPoint, { recursive: true });
      chmodSync(mountPoint, 0o755);
    }
    for (let d = top; d !== dirname(d); d = dirname(d)) {
      if ((statSync(d).mode & 0o001) === 0) {
        throw new GuestError(`${d} is not traversable by the postgres user (mode ${(statSync(d).mode & 0o777).toString(8)}); give it o+x${runnerKind === 'process' ? ' or choose another --state-dir' : ''}`);
      }
    }
    for (const d of runnerKind === 'process' ? [dataDir, socketDir, walArchive, logDir] : [dataDir, walArchive, logDir]) {
      mkdirSync(d, { recursive: true, mode: 0o700 });
      chownSync(d, owner.uid, owner.gid);
    }
    accessSync(top, fsc.X_OK);
  }

  /**
   * Debian's cluster 15/main, as pg_ctlcluster reads it, made to run the volume's data directory:
   * its postgresql.conf names the data directory, the agent's hba and ident files there, and
   * includes the data directory's postgresql.conf (Trove's configuration and the agent's own
   * settings). pg_ctlcluster follows the include to find the port and the rest.
   */
  function writeDebianCluster(): void {
    if (runnerKind !== 'systemd') return;
    mkdirSync(DEBIAN_CLUSTER, { recursive: true });
    for (let d = DEBIAN_CLUSTER; d !== '/etc'; d = dirname(d)) chmodSync(d, statSync(d).mode & 0o7777 | 0o755);
    const conf = join(DEBIAN_CLUSTER, 'postgresql.conf');
    const lines = [
      '# Written by guestagent: Debian\'s cluster 15/main (postgresql@15-main) runs the data directory on the',
      `# instance's volume; the server's configuration is ${dataDir}/postgresql.conf, included below.`,
      `data_directory = '${dataDir}'`,
      `hba_file = '${dataDir}/pg_hba.conf'`,
      `ident_file = '${dataDir}/pg_ident.conf'`,
      `include '${dataDir}/postgresql.conf'`,
    ];
    // 0644 postgres, as pg_createcluster leaves it: the agent's UMask=0077 would make it 0600 root.
    writeFileSync(conf, lines.join('\n') + '\n');
    chmodSync(conf, 0o644);
    chownSync(conf, owner.uid, owner.gid);
    for (const [f, text] of [['start.conf', 'auto\n'], ['pg_ctl.conf', '']] as const) {
      const file = join(DEBIAN_CLUSTER, f);
      if (existsSync(file)) continue;
      writeFileSync(file, text);
      chmodSync(file, 0o644);
      chownSync(file, owner.uid, owner.gid);
    }
  }

  function writeHba(trust = false): string {
    const file = join(dataDir, trust ? 'pg_hba.trust.conf' : 'pg_hba.conf');
    const lines = trust
      ? ['local all all trust']
      : [
          '# Written by guestagent: the admin stays local, Trove users come in with passwords.',
          'local all postgres scram-sha-256',
          ...(peer() ? ['local all os_admin peer map=guestagent'] : []),
          'local all os_admin scram-sha-256',
          'local replication os_admin scram-sha-256',
          'host all os_admin all reject',
          // Trove's replication source rule (its strategy adds it in enable_as_master); the role exists only on sources.
          `host replication ${REPL_USER} 0.0.0.0/0 scram-sha-256`,
          `host replication ${REPL_USER} ::/0 scram-sha-256`,
          'local all all scram-sha-256',
          'host all all 0.0.0.0/0 scram-sha-256',
          'host all all ::/0 scram-sha-256',
        ];
    writeFileSync(file, lines.join('\n') + '\n', { mode: 0o600 });
    chownSync(file, owner.uid, owner.gid);
    if (peer()) {
      const ident = join(dataDir, 'pg_ident.conf');
      writeFileSync(ident, `# Written by guestagent: the agent's system user logs in as os_admin.\nguestagent ${userInfo().username} os_admin\n`, { mode: 0o600 });
      chownSync(ident, owner.uid, owner.gid);
    }
    return file;
  }

  function writeConfig(contents: string | null, overrides: Record<string, unknown> | null): void {
    const conf = join(dataDir, 'postgresql.conf');
    const base = contents ?? (existsSync(conf) ? readFileSync(conf, 'utf8').replace(/\n# Written by guestagent[\s\S]*$/, '\n') : '');
    // Self-run, the one-off settings are on the command line; Debian's unit takes none, so they are a file read last.
    const oneOffConf = runnerKind === 'systemd' ? "include_if_exists 'guestagent-oneoff.conf'\n" : '';
    writeFileSync(
      conf,
      `${base.replace(/\s*$/, '\n')}\n# Written by guestagent: overrides, then the agent's own settings, are read last.\ninclude_if_exists 'guestagent-logs.conf'\ninclude_if_exists 'guestagent-overrides.conf'\ninclude 'guestagent-runtime.conf'\ninclude_if_exists 'guestagent-replication.conf'\ninclude_if_exists 'guestagent-readonly.conf'\n${oneOffConf}`,
      { mode: 0o600 },
    );
    chownSync(conf, owner.uid, owner.gid);
    // WAL archiving on the agent's own paths (Trove's template names its container's paths).
    const runtime = [
      'wal_level = replica',
      'archive_mode = on',
      `archive_command = 'test ! -f ${walArchive}/%f && cp %p ${walArchive}/%f'`,
      `restore_command = 'cp ${walArchive}/%f "%p"'`,
    ];
    if (runnerKind === 'systemd') {
      // What Debian's unit relies on: its PIDFile=/run/postgresql/15-main.pid and the socket in the package's run dir.
      runtime.push(`external_pid_file = '/var/run/postgresql/15-main.pid'`, `unix_socket_directories = '${socketDir}'`, `cluster_name = '15/main'`);
      // Trove's template ends with include_dir '/etc/postgresql/conf.d': a directory missing there stops the server.
      for (const m of base.matchAll(/^[ \t]*include_dir[ \t]*(?:=[ \t]*)?'(\/[^']+)'/gm)) {
        if (existsSync(m[1]!)) continue;
        mkdirSync(m[1]!, { recursive: true });
        chmodSync(m[1]!, 0o755);
      }
      writeDebianCluster();
    }
    const rt = join(dataDir, 'guestagent-runtime.conf');
    writeFileSync(rt, runtime.join('\n') + '\n', { mode: 0o600 });
    chownSync(rt, owner.uid, owner.gid);
    if (overrides) writeOverrides(overrides);
  }

  function writeOverrides(overrides: Record<string, unknown>): void {
    const lines: string[] = [];
    for (const [k, v] of Object.entries(overrides)) {
      if (!/^[a-z][a-z0-9_.]*$/.test(k)) throw new BadRequestError(`'${k}' is not a valid configuration option name`);
      if (typeof v === 'object' || /[\r\n\0]/.test(String(v))) throw new BadRequestError(`the value of '${k}' is not a single-line value`);
      lines.push(`${k} = '${String(v).replace(/\\/g, '\\\\').replace(/'/g, "''")}'`);
    }
    const file = join(dataDir, 'guestagent-overrides.conf');
    writeFileSync(file, lines.join('\n') + '\n', { mode: 0o600 });
    chownSync(file, owner.uid, owner.gid);
  }

  async function initdb(ctx: OpContext): Promise<string> {
    const initPw = randomBytes(24).toString('base64url');
    const pwfile = join(dataDir, '..', 'initdb.pw');
    writeFileSync(pwfile, initPw + '\n', { mode: 0o600 });
    chownSync(pwfile, owner.uid, owner.gid);
    try {
      await exec(join(BIN, 'initdb'), ['-D', dataDir, '-U', 'postgres', `--pwfile=${pwfile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8'], {
        uid: owner.uid, gid: owner.gid, signal: ctx.signal, log: ctx.log, timeoutMs: 300_000,
      });
    } finally {
      rmSync(pwfile, { force: true });
    }
    return initPw;
  }

  /** os_admin superuser with a random password (0600 file); postgres (root) NOLOGIN. */
  async function secure(as: { user: string; password: string | null }, ctx: OpContext): Promise<void> {
    const pw = randomBytes(24).toString('base64url');
    await withClient(async (c) => {
      const exists = (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', ['os_admin'])).rowCount;
      await c.query(`${exists ? 'ALTER' : 'CREATE'} ROLE os_admin WITH SUPERUSER LOGIN REPLICATION PASSWORD ${literal(pw)}`);
    }, as);
    writeFileSync(secretFile, pw + '\n', { mode: 0o600 });
    chmodSync(secretFile, 0o600);
    ctx.log.info('database secured: os_admin created');
  }

  /** Reloads the configuration and notes what only a restart applies (status 'restart required'). */
  async function reload(ctx: OpContext): Promise<void> {
    await withClient((c) => c.query('SELECT pg_reload_conf()'));
    // The reload is asynchronous: give the postmaster a moment before asking what still waits for a restart.
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 100));
      pendingRestart = await withClient(async (c) => (await c.query<{ name: string }>('SELECT name FROM pg_settings WHERE pending_restart ORDER BY 1')).rows.map((r) => r.name));
      if (pendingRestart.length) break;
    }
    if (pendingRestart.length) ctx.log.warn({ settings: pendingRestart }, 'configuration reloaded; these settings need a restart');
    else ctx.log.info('configuration reloaded');
  }

  const admin: Admin = {
    async createDatabases(dbs: Schema[], ctx) {
      for (const d of dbs) {
        validName('database', d.name);
        if (ignoreDbs.includes(d.name)) throw new BadRequestError(`Database '${d.name}' is reserved and cannot be used.`);
        for (const v of [d.characterSet, d.collate]) if (v && !/^[A-Za-z0-9_.@-]+$/.test(v)) throw new InvalidValueError(`'${v}' is not a valid encoding or collation.`);
      }
      await withClient(async (c) => {
        for (const d of dbs) {
          let sql = `CREATE DATABASE ${ident(d.name)}`;
          if (d.characterSet) sql += ` ENCODING ${literal(d.characterSet)}`;
          if (d.collate) sql += ` LC_COLLATE ${literal(d.collate)} LC_CTYPE ${literal(d.collate)} TEMPLATE template0`;
          else if (d.characterSet) sql += ' TEMPLATE template0';
          try {
            await c.query(sql);
          } catch (e) {
            const code = (e as { code?: string }).code;
            if (code === '42P04') continue; // already exists: as Trove, not an error
            if (code === '22023' || code === '42704') throw new InvalidValueError((e as Error).message);
            throw e;
          }
          ctx.log.info({ database: d.name }, 'database created');
        }
      });
    },
    async listDatabases(p: PageRequest): Promise<Page<Schema>> {
      return withClient(async (c) => {
        const params: unknown[] = [ignoreDbs];
        let sql = 'SELECT datname AS name, pg_encoding_to_char(encoding) AS enc, datcollate AS co FROM pg_database WHERE NOT datistemplate AND datname <> ALL($1)';
        if (p.marker) (params.push(p.marker), (sql += ` AND datname ${p.includeMarker ? '>=' : '>'} $${params.length}`));
        sql += ' ORDER BY datname';
        if (p.limit !== null && p.limit !== undefined) (params.push(p.limit + 1), (sql += ` LIMIT $${params.length}`));
        const rows = (await c.query<{ name: string; enc: string; co: string }>(sql, params)).rows.map((r) => ({ name: r.name, characterSet: r.enc, collate: r.co }));
        return page(rows, p.limit, (s) => s.name);
      });
    },
    async deleteDatabase(db: Schema) {
      validName('database', db.name);
      if (ignoreDbs.includes(db.name)) throw new BadRequestError(`Database '${db.name}' is reserved and cannot be used.`);
      await withClient(async (c) => {
        if (!(await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [db.name])).rowCount) throw new DatabaseNotFoundError(db.name);
        // Connected clients are ended first, as Trove's delete does.
        await c.query(`DROP DATABASE ${ident(db.name)} WITH (FORCE)`);
      });
    },
    async createUsers(users: User[], ctx) {
      const checked = users.map((u) => {
        validName('user', u.name);
        if (ignoreUsers.includes(u.name)) throw new BadRequestError(`User '${u.name}' is reserved and cannot be used.`);
        u.databases.forEach((d) => validName('database', d));
        return { name: u.name, pw: validPassword(u.password), dbs: u.databases };
      });
      await withClient(async (c) => {
        for (const u of checked) {
          await c.query(`CREATE ROLE ${ident(u.name)} WITH LOGIN PASSWORD ${literal(u.pw)}`);
          for (const d of u.dbs) await c.query(`GRANT ALL PRIVILEGES ON DATABASE ${ident(d)} TO ${ident(u.name)}`);
          ctx.log.info({ user: u.name }, 'user created');
        }
      });
    },
    async listUsers(p: PageRequest): Promise<Page<User>> {
      return withClient(async (c) => {
        const params: unknown[] = [ignoreUsers];
        let sql = "SELECT rolname AS name FROM pg_roles WHERE rolcanlogin AND rolname <> ALL($1) AND rolname !~ '^pg_'";
        if (p.marker) (params.push(p.marker), (sql += ` AND rolname ${p.includeMarker ? '>=' : '>'} $${params.length}`));
        sql += ' ORDER BY rolname';
        if (p.limit !== null && p.limit !== undefined) (params.push(p.limit + 1), (sql += ` LIMIT $${params.length}`));
        const names = (await c.query<{ name: string }>(sql, params)).rows.map((r) => r.name);
        const pg1 = page(names, p.limit, (n) => n);
        const items: User[] = [];
        for (const n of pg1.items) items.push({ name: n, host: '%', password: null, databases: await access(c, n) });
        return { items, nextMarker: pg1.nextMarker };
      });
    },
    async getUser(name) {
      validName('user', name);
      if (ignoreUsers.includes(name)) throw new BadRequestError(`User '${name}' is reserved and cannot be used.`);
      return withClient(async (c) => {
        if (!(await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1 AND rolcanlogin', [name])).rowCount) return null;
        return { name, host: '%', password: null, databases: await access(c, name) };
      });
    },
    async deleteUser(user) {
      validName('user', user.name);
      if (ignoreUsers.includes(user.name)) throw new BadRequestError(`User '${user.name}' is reserved and cannot be used.`);
      await withClient(async (c) => {
        if (!(await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [user.name])).rowCount) throw new UserNotFoundError(user.name);
        // Its privileges on databases go with it; objects it owns block the drop, as in PostgreSQL.
        for (const d of await access(c, user.name)) await c.query(`REVOKE ALL PRIVILEGES ON DATABASE ${ident(d)} FROM ${ident(user.name)}`);
        await c.query(`DROP ROLE ${ident(user.name)}`);
      });
    },
    async updateAttributes(name, _host, attrs) {
      validName('user', name);
      await withClient(async (c) => {
        if (!(await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount) throw new UserNotFoundError(name);
        if (attrs.password) await c.query(`ALTER ROLE ${ident(name)} WITH PASSWORD ${literal(validPassword(attrs.password))}`);
        if (attrs.name && attrs.name !== name) {
          validName('user', attrs.name);
          if (ignoreUsers.includes(attrs.name)) throw new BadRequestError(`User '${attrs.name}' is reserved and cannot be used.`);
          await c.query(`ALTER ROLE ${ident(name)} RENAME TO ${ident(attrs.name)}`);
          // A rename clears an MD5 password; scram ones survive.
        }
      });
    },
    async changePasswords(users) {
      await withClient(async (c) => {
        for (const u of users) {
          validName('user', u.name);
          if (!(await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [u.name])).rowCount) throw new UserNotFoundError(u.name);
          await c.query(`ALTER ROLE ${ident(u.name)} WITH PASSWORD ${literal(validPassword(u.password))}`);
        }
      });
    },
    async grantAccess(name, _host, databases) {
      validName('user', name);
      databases.forEach((d) => validName('database', d));
      await withClient(async (c) => {
        if (!(await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount) throw new UserNotFoundError(name);
        for (const d of databases) await c.query(`GRANT ALL PRIVILEGES ON DATABASE ${ident(d)} TO ${ident(name)}`);
      });
    },
    async revokeAccess(name, _host, database) {
      validName('user', name);
      validName('database', database);
      await withClient(async (c) => {
        if (!(await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount) throw new UserNotFoundError(name);
        await c.query(`REVOKE ALL PRIVILEGES ON DATABASE ${ident(database)} FROM ${ident(name)}`);
      });
    },
    async listAccess(name) {
      validName('user', name);
      return withClient(async (c) => {
        if (!(await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount) throw new UserNotFoundError(name);
        return (await access(c, name)).map((d) => ({ name: d, characterSet: null, collate: null }));
      });
    },
  };

  async function access(c: pg.Client, role: string): Promise<string[]> {
    const r = await c.query<{ d: string }>(
      'SELECT DISTINCT d.datname AS d FROM pg_database d, aclexplode(d.datacl) a JOIN pg_roles r ON a.grantee = r.oid WHERE r.rolname = $1 AND NOT d.datistemplate ORDER BY 1',
      [role],
    );
    return r.rows.map((x) => x.d).filter((d) => !ignoreDbs.includes(d));
  }

  const root: Root = {
    async enableRoot(pw) {
      const p = pw === null ? randomBytes(24).toString('base64url') : validPassword(pw);
      await withClient((c) => c.query(`ALTER ROLE postgres WITH LOGIN PASSWORD ${literal(p)}`));
      events.rootEnabled?.({ name: 'postgres', host: '%', password: null, databases: [] });
      return { name: 'postgres', host: '%', password: p, databases: [], isRoot: true };
    },
    async disableRoot() {
      await withClient((c) => c.query('ALTER ROLE postgres WITH NOLOGIN PASSWORD NULL'));
    },
    async isRootEnabled() {
      return withClient(async (c) => Boolean((await c.query<{ l: boolean }>("SELECT rolcanlogin AS l FROM pg_roles WHERE rolname = 'postgres'")).rows[0]?.l));
    },
  };

  return {
    name: 'postgresql',
    mountPoint,
    status: {
      async status(): Promise<ServiceStatus> {
        if (await ping()) return pendingRestart.length ? 'restart required' : 'healthy';
        const s = runner.state();
        return s === 'running' ? 'running' : s === 'crashed' ? 'crashed' : 'shutdown';
      },
    },
    admin,
    root,
    configuration: {
      async updateOverrides(overrides, remove) {
        writeOverrides(remove ? {} : overrides);
      },
      async applyOverrides(_overrides, ctx) {
        // The overrides file is already written; reload picks up what can change live.
        await reload(ctx);
      },
      async resetConfiguration(contents) {
        writeConfig(contents, null);
      },
    },
    replication: createPgReplication({
      dataDir, bin: BIN, owner, port, runner,
      withClient: (fn) => withClient(fn),
      reload: (ctx) => reload(ctx),
      writeHba: () => void writeHba(),
      strategy: typeof section['replication_strategy'] === 'string' ? section['replication_strategy'] : 'PostgresqlReplicationStreaming',
    }),
    backup: {
      async plan({ backupId, parent, codec }, ctx) {
        const pw = password();
        if (pw === null) throw new GuestError('The database has not been prepared: no admin credentials for the backup.');
        const metadata = () => historyOf(walArchive, backupId, ctx.signal);
        if (parent) {
          // A start/stop point of its own (its history file ends the WAL it carries), then the archived WAL since the parent.
          await withClient(async (c) => {
            await c.query('SELECT pg_backup_start($1, true)', [backupId]);
            await c.query('SELECT lsn FROM pg_backup_stop(true)');
          });
          return { producer: walTar(walArchive, walSince(walArchive, parent)), extension: 'tar.gz', compress: true, metadata, cleanup: async () => {} };
        }
        // For zstd the server compresses the tar itself as it reads the files (PostgreSQL 15's
        // server-side compression, a zstd worker per core): the whole data directory no longer
        // crosses the socket to pg_basebackup and a pipe to zstd, only the compressed bytes do.
        // 1.9 GB of pgbench tables: 1.4 s against 4.3-4.7 s piped to `zstd -T0 -3`, half the CPU.
        // pg_basebackup cannot add its manifest to a tar compressed by the server; restores never
        // read it (nor does Trove's). The server's zstd frames carry no checksum: restores check
        // every byte against the md5s Swift keeps for the object's segments (backup/pipeline.ts).
        const serverZstd = codec === 'zstd';
        return {
          // One tar on stdout with the WAL needed for consistency; the password goes through the environment.
          producer: {
            file: join(BIN, 'pg_basebackup'),
            args: [
              '-h', socketDir, '-p', String(port()), '-U', 'os_admin', '-D', '-', '-Ft', '-X', 'fetch', '--checkpoint=fast', `--label=${backupId}`, '-w',
              ...(serverZstd ? ['--no-manifest', `--compress=server-zstd:level=${ZSTD_LEVEL},workers=${availableParallelism()}`] : []),
            ],
            env: { PGPASSWORD: pw },
          },
          extension: serverZstd ? 'tar.zst' : 'tar.gz',
          compress: !serverZstd,
          metadata,
          cleanup: async () => {},
        };
      },
    },
    logs: {
      // Trove's PostgreSQL 'general' log: every statement, through the logging collector (a restart turns it on).
      defs: () => [{ name: 'general', type: 'USER', file: join(logDir, 'general.log') }],
      async isEnabled(name) {
        return name === 'general' && existsSync(logsConf()) && /^logging_collector = on$/m.test(readFileSync(logsConf(), 'utf8'));
      },
      async setEnabled(name, enabled, ctx) {
        if (name !== 'general') throw new BadRequestError(`Log '${name}' is not defined.`);
        const lines = enabled
          ? ['logging_collector = on', "log_destination = 'stderr'", `log_directory = '${logDir}'`, "log_filename = 'general.log'", "log_statement = 'all'", `log_min_duration_statement = ${Number(longQueryMs)}`]
          : ['logging_collector = off'];
        writeFileSync(logsConf(), lines.join('\n') + '\n', { mode: 0o600 });
        chownSync(logsConf(), owner.uid, owner.gid);
        await reload(ctx);
        return pendingRestart.includes('logging_collector');
      },
    },
    lifecycle: {
      async prepare(req: PrepareRequest, ctx: OpContext, fetcher?: BackupFetcher) {
        if (req.backupInfo && !fetcher) throw new OperationNotSupportedError('restore from backup during prepare', 'postgresql');
        // A standby must start from its source's own data: a fresh initdb could never follow it.
        if (req.snapshot && !req.backupInfo?.location) throw new BadRequestError("a PostgreSQL replica is made from its source's snapshot backup: prepare got a snapshot without backup_info");
        await runner.stop(ctx);
        ensureDirs();
        let as: { user: string; password: string | null };
        if (req.backupInfo && fetcher) {
          if (!req.backupInfo.location) throw new GuestError('backup_info has no location to restore from');
          rmSync(dataDir, { recursive: true, force: true });
          rmSync(walArchive, { recursive: true, force: true });
          ensureDirs();
          await restoreChain(fetcher, req.backupInfo.location, req.backupInfo.checksum ?? null, { dataDir, archive: walArchive }, ctx);
          if (req.snapshot) {
            // A replica (Trove: prepare with the source's snapshot): a standby of the source, which
            // attach_replica sets up and starts next. Its roles are the source's, read-only.
            parseReplicaSource(req.snapshot);
            writeFileSync(peerFile, '', { mode: 0o600 });
            rmSync(secretFile, { force: true });
            await exec('/usr/bin/chown', ['-R', `${owner.uid}:${owner.gid}`, dataDir, walArchive], { signal: ctx.signal });
            chmodSync(dataDir, 0o700);
            writeConfig(req.configContents, req.overrides);
            writeHba();
            ctx.log.info('snapshot restored: attaching as a replica');
            return;
          }
          // Archive recovery replays the backup's WAL and any incremental's, then opens a new timeline.
          writeFileSync(join(dataDir, 'recovery.signal'), '');
          await exec('/usr/bin/chown', ['-R', `${owner.uid}:${owner.gid}`, dataDir, walArchive], { signal: ctx.signal });
          chmodSync(dataDir, 0o700);
          writeConfig(req.configContents, req.overrides);
          // The restored os_admin has the source's password: reset it through a local-trust start.
          // hot_standby off: recovery then does not insist on the source's max_connections and
          // friends (a restore onto a smaller flavour); nobody but the agent connects meanwhile.
          setOneOff([['hba_file', writeHba(true)], ['hot_standby', 'off']]);
          await runner.start(ctx);
          // The source locked postgres (NOLOGIN); its os_admin can still log in. A backup
          // whose os_admin is missing (another tool's) falls back to postgres.
          as = (await withClient(async () => true, { user: 'os_admin', password: null }).catch(() => false))
            ? { user: 'os_admin', password: null }
            : { user: 'postgres', password: null };
        } else {
          const initPw = await initdb(ctx);
          writeConfig(req.configContents, req.overrides);
          writeHba();
          await runner.start(ctx);
          as = { user: 'postgres', password: initPw };
        }
        await secure(as, ctx);
        if (oneOff.length) {
          setOneOff([]);
          writeHba();
          await runner.restart(ctx);
        }
        await withClient((c) => c.query('ALTER ROLE postgres WITH NOLOGIN PASSWORD NULL')).catch((err: unknown) => ctx.log.warn({ err }, 'could not lock postgres'));
        if (!req.clusterConfig) {
          if (req.databases.length) await admin.createDatabases(req.databases, ctx).catch((err: unknown) => ctx.log.warn({ err }, 'creating databases failed'));
          if (req.users.length) await admin.createUsers(req.users, ctx).catch((err: unknown) => ctx.log.warn({ err }, 'creating users failed'));
          if (req.rootPassword && !req.backupInfo) await root.enableRoot(req.rootPassword, ctx).catch((err: unknown) => ctx.log.error({ err }, 'enabling root failed'));
        }
      },
      async restart(ctx) {
        await runner.restart(ctx);
        pendingRestart = [];
      },
      async stop(o, ctx) {
        await runner.stop(ctx, { disableOnBoot: o.doNotStartOnReboot });
      },
      async startWithConfChanges(contents, ctx) {
        if (contents !== null) writeConfig(contents, null);
        await runner.start(ctx);
        pendingRestart = [];
      },
      async rebuild(req, ctx) {
        await runner.stop(ctx);
        if (!existsSync(join(dataDir, 'PG_VERSION'))) {
          throw new GuestError(`no PostgreSQL data directory in ${dataDir}: is the instance's data volume mounted at ${mountPoint}?`);
        }
        ensureDirs();
        // The new image's postgres user may have another uid than the old one's.
        await exec('/usr/bin/chown', ['-R', `${owner.uid}:${owner.gid}`, dataDir, walArchive], { signal: ctx.signal });
        chmodSync(dataDir, 0o700);
        writeConfig(req.configContents, req.overrides ?? {});
        if (existsSync(join(dataDir, 'standby.signal'))) {
          // A replica's volume: a standby cannot be given a new os_admin password; the agent logs in by peer, as on any replica.
          writeFileSync(peerFile, '', { mode: 0o600 });
          writeHba();
          await runner.start(ctx);
          pendingRestart = [];
          ctx.log.info({ data_dir: dataDir }, 'replica back on the rebuilt guest, following its source');
          return;
        }
        // os_admin's password left with the old root disk: set a new one through a local-trust start.
        setOneOff([['hba_file', writeHba(true)]]);
        try {
          await runner.start(ctx);
          await secure({ user: 'os_admin', password: null }, ctx);
        } finally {
          setOneOff([]);
          writeHba();
        }
        await runner.restart(ctx);
        pendingRestart = [];
        ctx.log.info({ data_dir: dataDir }, 'server back on the rebuilt guest with its data');
      },
      async resume(prepared, ctx) {
        if (prepared && runner.kind === 'process') await runner.start(ctx);
      },
      async close() {
        await runner.close();
      },
    },
  };
}

function page<T>(rows: T[], limit: number | null | undefined, marker: (t: T) => string): Page<T> {
  if (limit === null || limit === undefined || rows.length <= limit) return { items: rows, nextMarker: null };
  const items = rows.slice(0, limit);
  return { items, nextMarker: marker(items[items.length - 1]!) };
}
