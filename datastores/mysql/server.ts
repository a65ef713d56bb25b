/**
 * Where the MySQL/MariaDB server keeps its files and how it is started: the
 * paths the runner owns, the option file written from Trove's
 * config_contents plus the agent's overrides, and the admin credentials file
 * (0600, usable as --defaults-extra-file by backup tools; never argv).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { RunnerKind } from '../../src/datastore.ts';
import { BadRequestError } from '../../src/errors.ts';
import { fileMark, fileTextSince } from '../../src/service/runner.ts';

export interface MysqlPaths {
  /** Data directory (Trove: <mount_point>/data). */
  dataDir: string;
  /** The server's main option file (Trove's rendered template goes here). */
  configFile: string;
  /** Directory of agent-written includes (overrides.cnf), read after the main file. */
  confDir: string;
  socket: string;
  pidFile: string;
  errorLog: string;
  /** [client] file with os_admin's password, mode 0600. */
  adminCnf: string;
}

export function mysqlPaths(runner: RunnerKind, stateDir: string, mountPoint: string): MysqlPaths {
  if (runner === 'process') {
    // The process runner owns everything under the agent's state dir: it never
    // touches a distribution server's files.
    return {
      dataDir: join(stateDir, 'data'),
      configFile: join(stateDir, 'my.cnf'),
      confDir: join(stateDir, 'conf.d'),
      socket: join(stateDir, 'run', 'mysqld.sock'),
      pidFile: join(stateDir, 'run', 'mysqld.pid'),
      errorLog: join(stateDir, 'mysqld.err'),
      adminCnf: join(stateDir, 'os_admin.cnf'),
    };
  }
  return {
    dataDir: join(mountPoint, 'data'),
    configFile: '/etc/mysql/my.cnf',
    confDir: '/etc/mysql/conf.d',
    socket: '/run/mysqld/mysqld.sock',
    pidFile: '/run/mysqld/mysqld.pid',
    errorLog: '/var/log/mysql/error.log',
    adminCnf: join(stateDir, 'os_admin.cnf'),
  };
}

const DEFAULT_CONFIG = `[mysqld]
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
skip-name-resolve
`;

/**
 * An option file the server (user mysql) must read: 0644 whatever the agent's
 * umask (the unit's UMask=0077 made them 0600, and mariadbd skips files it
 * cannot read without a word; found by the real-boot test). No secrets go here.
 */
export function writeOptionFile(file: string, text: string): void {
  writeFileSync(file, text, { mode: 0o644 });
  chmodSync(file, 0o644);
}

/** Writes the main option file: Trove's config_contents, then our include dir (read last, so overrides win). */
/**
 * Options Trove's templates set that today's servers no longer have and refuse to start with:
 * Trove 18's mysql config.template sets default_authentication_plugin, innodb_log_files_in_group
 * and innodb_log_file_size, which MySQL 9.7 stops at ("unknown variable"; MariaDB 10.11 still
 * takes the first two, warning that they do nothing); its MySQL replica template sets
 * relay_log_info_repository (gone since MySQL 8.3); its 5.7-era configuration rules name query
 * cache and file format options MySQL 8.0 removed. They are written with the `loose_` prefix both
 * servers understand: a server that has the option takes it, one that does not starts with a
 * warning in its error log.
 */
export const RETIRED_OPTIONS: ReadonlySet<string> = new Set([
  'default_authentication_plugin', 'innodb_log_files_in_group', 'innodb_log_file_size', 'expire_logs_days',
  'relay_log_info_repository', 'master_info_repository', 'query_cache_size', 'query_cache_type', 'query_cache_limit',
  'innodb_large_prefix', 'innodb_file_format', 'innodb_support_xa',
]);

/** An option line `name[ = value]` whose name (dashes or underscores) is retired gets `loose_` in front. */
export function looseRetired(line: string): string {
  const m = /^(\s*)([A-Za-z][A-Za-z0-9_-]*)(\s*(?:=.*)?)$/.exec(line);
  return m && RETIRED_OPTIONS.has(m[2]!.replaceAll('-', '_')) ? `${m[1]}loose_${m[2]}${m[3]}` : line;
}

/**
 * An `!include` or `!includedir` of a path that does not exist stops the server before it starts
 * ("Can't read dir of '/etc/mysql/conf.d/'"): Trove's template ends with `!includedir
 * /etc/mysql/conf.d/`, which an image's server package may not have made. Such a line is kept as a
 * comment saying so; there is nothing to include.
 */
export function dropMissingInclude(line: string, exists: (path: string) => boolean = existsSync): string {
  const m = /^\s*!include(?:dir)?\s+(.+?)\s*$/.exec(line);
  return m && !exists(m[1]!) ? `# guestagent: ${m[1]} does not exist here, not included: ${line.trim()}` : line;
}

/**
 * `secure_file_priv = NULL` is MySQL's way to turn file import and export off (Trove's mysql
 * template sets it); MariaDB has no such value and stops ("Failed to normalize the argument for
 * --secure-file-priv"). For MariaDB the option names an empty directory only root may enter
 * instead: the server, which runs as mysql, can neither read nor write files through it.
 */
export function mariadbFilePriv(line: string, dir: string): string {
  return /^\s*secure[-_]file[-_]priv\s*=\s*['"]?null['"]?\s*$/i.test(line) ? `secure_file_priv = ${dir}` : line;
}

/** Writes Trove's config_contents as the server's option file, made fit for the server that reads it (see above). */
export function writeConfig(p: MysqlPaths, contents: string | null, flavor: 'mariadb' | 'mysql'): void {
  mkdirSync(p.confDir, { recursive: true });
  const noFiles = join(dirname(p.dataDir), 'no-file-io');
  const body = (contents ?? DEFAULT_CONFIG)
    .split('\n')
    .map((line) => dropMissingInclude(looseRetired(line)))
    .map((line) => (flavor === 'mariadb' ? mariadbFilePriv(line, noFiles) : line))
    .join('\n')
    .replace(/\s*$/, '\n');
  if (flavor === 'mariadb' && body.includes(`secure_file_priv = ${noFiles}\n`)) {
    mkdirSync(noFiles, { recursive: true, mode: 0o700 });
    chmodSync(noFiles, 0o700);
  }
  writeOptionFile(p.configFile, `${body}\n# Written by guestagent: overrides are read last.\n!includedir ${p.confDir}\n`);
  // Where the data and the socket are is the agent's to say, read after everything else: the
  // distribution's unit starts mariadbd with only this option file (under the process runner the
  // command line says the same). Without it, a template without datadir ran the package's own
  // /var/lib/mysql instead of the volume's data directory (found by the real-boot test).
  writeOptionFile(join(p.confDir, 'zzz-guestagent-paths.cnf'), `[mysqld]\ndatadir = ${p.dataDir}\nsocket = ${p.socket}\npid-file = ${p.pidFile}\nlog-error = ${p.errorLog}\n[client]\nsocket = ${p.socket}\n`);
}

const OPTION_NAME = /^[A-Za-z][A-Za-z0-9_.-]*$/;

/** Renders Trove's overrides dict as an option-file section, refusing anything that could break out of it. */
export function renderOverrides(overrides: Record<string, unknown>): string {
  const lines = ['[mysqld]'];
  for (const [k, v] of Object.entries(overrides)) {
    if (!OPTION_NAME.test(k)) throw new BadRequestError(`'${k}' is not a valid configuration option name`);
    let text: string;
    if (typeof v === 'boolean') text = v ? '1' : '0';
    else if (typeof v === 'number' && Number.isFinite(v)) text = String(v);
    else if (typeof v === 'string' && !/[\r\n\0]/.test(v)) text = v;
    else throw new BadRequestError(`the value of '${k}' is not a number, boolean or single-line string`);
    lines.push(`${k} = ${text}`);
  }
  return lines.join('\n') + '\n';
}

export function overridesFile(p: MysqlPaths): string {
  return join(p.confDir, 'zz-guestagent-overrides.cnf');
}

export function writeOverrides(p: MysqlPaths, overrides: Record<string, unknown>): void {
  mkdirSync(p.confDir, { recursive: true });
  writeOptionFile(overridesFile(p), renderOverrides(overrides));
}

export function removeOverrides(p: MysqlPaths): void {
  rmSync(overridesFile(p), { force: true });
}

export function readOverrides(p: MysqlPaths): Record<string, string> {
  if (!existsSync(overridesFile(p))) return {};
  const out: Record<string, string> = {};
  for (const line of readFileSync(overridesFile(p), 'utf8').split('\n')) {
    const m = /^([^=\s[]+)\s*=\s*(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

export function dataDirInitialized(p: MysqlPaths): boolean {
  return existsSync(join(p.dataDir, 'mysql')) && readdirSync(join(p.dataDir, 'mysql')).length > 0;
}

export function generatePassword(): string {
  // URL-safe base64 without characters Trove's rules refuse.
  return randomBytes(24).toString('base64url');
}

export function writeAdminCnf(p: MysqlPaths, password: string): void {
  // Under systemd the agent's state dir for the datastore may not exist yet (found by the real-boot test).
  mkdirSync(dirname(p.adminCnf), { recursive: true, mode: 0o700 });
  writeFileSync(p.adminCnf, `[client]\nuser = os_admin\npassword = ${password}\nsocket = ${p.socket}\n`, { mode: 0o600 });
  chmodSync(p.adminCnf, 0o600);
}

export function readAdminPassword(p: MysqlPaths): string | null {
  if (!existsSync(p.adminCnf)) return null;
  const m = /^password = (.*)$/m.exec(readFileSync(p.adminCnf, 'utf8'));
  return m ? m[1]! : null;
}

/** The error log's size now: where what the server writes next begins. */
export function errorLogMark(p: MysqlPaths): number {
  return fileMark(p.errorLog);
}

/**
 * The server's own [ERROR] lines written since `mark` (the last three, without their timestamp,
 * thread and MySQL's [MY-…] [Server] tags), joined; null when there are none. MariaDB writes
 * `2026-12-04 15:12:01 0 [ERROR] /usr/sbin/mariadbd: unknown variable 'x=1'`, MySQL
 * `2026-12-04T14:47:16.931785Z 0 [ERROR] [MY-010095] [Server] Failed to access directory …`.
 */
export function serverErrorsSince(p: MysqlPaths, mark: number): string | null {
  const errors = fileTextSince(p.errorLog, mark)
    .split('\n')
    .filter((l) => l.includes('[ERROR]') && !/\bAborting\b/.test(l))
    .map((l) => l.slice(l.indexOf('[ERROR]') + '[ERROR]'.length).replace(/^(\s*\[[^\]]*\])*\s*/, '').trim())
    .filter(Boolean);
  return errors.length ? errors.slice(-3).join('; ') : null;
}
