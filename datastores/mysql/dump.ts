/**
 * Backups of Oracle's MySQL without Percona XtraBackup (packaged nowhere this
 * agent's guests install from): logical backups with the server's own tools.
 *
 * - full: `mysqldump --all-databases --single-transaction`, one consistent
 *   snapshot of every database, routine, event, trigger and account, with the
 *   server's GTID set at the snapshot (`SET @@GLOBAL.GTID_PURGED`) when GTIDs
 *   are on; stored as `<id>.sql.gz`;
 * - incremental (GTIDs on): the binary logs since the parent, closed by a
 *   `FLUSH BINARY LOGS` and read by `mysqlbinlog`, also `<id>.sql.gz`. The
 *   first file is the one that was being written when the parent started, so
 *   a few transactions are in both: each carries its GTID, and the server
 *   skips a GTID it has already applied.
 *
 * Every backup records `binlog-start` (the file the next incremental starts
 * from) and `gtid-mode` as object metadata. A restore feeds each object of the
 * chain, oldest first, to the `mysql` client of a freshly initialized server.
 * Credentials reach the tools through a 0600 option file, never argv.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { BackupCapability, ToolSpec } from '../../src/datastore.ts';
import { GuestError } from '../../src/errors.ts';
import { readAdminPassword, type MysqlPaths } from './server.ts';
import type { SqlClient } from './sql.ts';

/** The programs a logical backup and its restore run, from the server's client package. */
export interface MysqlTools {
  mysql: string;
  mysqldump: string;
  mysqlbinlog: string;
}

export const mysqlTools = (binDir: string): MysqlTools => ({
  mysql: join(binDir, 'mysql'),
  mysqldump: join(binDir, 'mysqldump'),
  mysqlbinlog: join(binDir, 'mysqlbinlog'),
});

/** Object names a logical backup is stored under (`.gz`/`.zst`, maybe `.enc`, after them). */
export const isLogicalBackup = (location: string): boolean => /\.sql\.(gz|zst)(\.enc)?$/.test(location);

/** A binary log file name as SHOW BINARY LOGS gives it (binlog.000042, mysql-bin.000003). */
const BINLOG = /^[A-Za-z0-9_.-]+\.\d{6,}$/;

/**
 * The binary logs an incremental backup carries: from `start` (the parent's
 * `binlog-start`) up to the newest closed one, given SHOW BINARY LOGS after a
 * flush (the last entry is the file now being written).
 */
export function binlogsSince(logs: readonly string[], start: string): { files: string[]; next: string } {
  for (const f of logs) if (!BINLOG.test(f)) throw new GuestError(`unexpected binary log name ${JSON.stringify(f)}`);
  const next = logs.at(-1);
  const from = logs.indexOf(start);
  if (!next || from < 0) {
    throw new GuestError(
      `the binary log ${start} the parent backup starts from is gone (purged, or the parent comes from another server): take a full backup`,
    );
  }
  const files = logs.slice(from, -1);
  if (files.length === 0) throw new GuestError(`no closed binary log since ${start}`);
  return { files, next };
}

export function createMysqldump(o: { paths: MysqlPaths; sql: () => SqlClient; tools: MysqlTools }): BackupCapability {
  const { paths, sql, tools } = o;

  /** A private option file with os_admin's credentials for the client tools. */
  const optionFile = (dir: string): string => {
    const password = readAdminPassword(paths);
    if (password === null) throw new GuestError('The database has not been prepared: no admin credentials for the backup.');
    const file = join(dir, 'client.cnf');
    writeFileSync(file, `[client]\nuser = os_admin\npassword = ${password}\nsocket = ${paths.socket}\n`, { mode: 0o600 });
    return file;
  };

  const serverState = async (): Promise<{ logBin: boolean; gtidMode: string; binlogDir: string; logs: string[] }> => {
    const [v] = await sql().query<{ log_bin: number | string; gtid_mode: string; base: string | null }>(
      'SELECT @@GLOBAL.log_bin AS log_bin, @@GLOBAL.gtid_mode AS gtid_mode, @@GLOBAL.log_bin_basename AS base',
    );
    const logBin = Number(v?.log_bin ?? 0) === 1;
    const logs = logBin ? (await sql().query<{ Log_name: string }>('SHOW BINARY LOGS')).map((r) => r.Log_name) : [];
    return { logBin, gtidMode: String(v?.gtid_mode ?? 'OFF'), binlogDir: v?.base ? dirname(v.base) : paths.dataDir, logs };
  };

  return {
    async plan({ parent }) {
      const state = await serverState();
      const meta: Record<string, string> = { 'gtid-mode': state.gtidMode };
      let producer: ToolSpec;
      const dir = mkdtempSync(join(tmpdir(), 'ga-mysqldump-'));
      try {
        if (parent) {
          // A parent this agent's logical backups made records both; a mariabackup or XtraBackup one neither.
          if (parent['gtid-mode'] === undefined && parent['binlog-start'] === undefined) {
            throw new GuestError('The parent backup is not a logical backup of a MySQL server (it records no binary log position; a physical backup cannot be the parent of one): take a full backup.');
          }
          if (!state.logBin) throw new GuestError('incremental backups of a MySQL server read its binary logs, and binary logging is off (log_bin): take a full backup');
          if (state.gtidMode !== 'ON' || parent['gtid-mode'] !== 'ON') {
            throw new GuestError(
              `incremental backups of a MySQL server need gtid_mode = ON, on the server and when the parent was taken (now ${state.gtidMode}, parent ${parent['gtid-mode'] ?? 'unknown'}): a configuration group can set gtid_mode and enforce_gtid_consistency; take a full backup`,
            );
          }
          const start = parent['binlog-start'];
          if (!start) throw new GuestError('The parent backup has no recorded binary log position: an incremental backup cannot start from it.');
          // Closes the file being written: everything committed so far is in closed files.
          await sql().query('FLUSH BINARY LOGS');
          const logs = (await sql().query<{ Log_name: string }>('SHOW BINARY LOGS')).map((r) => r.Log_name);
          const { files, next } = binlogsSince(logs, start);
          meta['binlog-start'] = next;
          producer = { file: tools.mysqlbinlog, args: ['--', ...files.map((f) => join(state.binlogDir, basename(f)))] };
        } else {
          // The file being written now: the snapshot mysqldump takes next lies in it or after it.
          if (state.logBin && state.logs.length) meta['binlog-start'] = state.logs.at(-1)!;
          producer = {
            file: tools.mysqldump,
            args: [
              `--defaults-extra-file=${optionFile(dir)}`,
              '--all-databases',
              '--single-transaction',
              '--quick',
              '--routines',
              '--events',
              '--triggers',
              '--hex-blob',
              '--flush-privileges',
              '--default-character-set=utf8mb4',
              // The binary log position of the snapshot, as a comment (point-in-time recovery by hand).
              ...(state.logBin ? ['--source-data=2'] : []),
            ],
          };
        }
      } catch (err) {
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }
      return {
        producer,
        extension: 'sql.gz',
        compress: true,
        metadata: () => meta,
        async cleanup() {
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

/**
 * What a load ends with, in its own session: that session logged in as os_admin before the
 * backup replaced the accounts (with the source's os_admin), and stays logged in, so it gives
 * os_admin this instance's `password`, in the account tables and in the server's memory, with
 * no restart. Kept out of the binary log. `password` is the agent's own (checked: it is SQL text).
 */
export function adminTrailer(password: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(password)) throw new GuestError('generated password has unexpected characters');
  return (
    '\nSET SESSION sql_log_bin = 0, SESSION sql_log_off = 1;\n' +
    `CREATE USER IF NOT EXISTS 'os_admin'@'localhost' IDENTIFIED BY '${password}';\n` +
    `ALTER USER 'os_admin'@'localhost' IDENTIFIED BY '${password}' ACCOUNT UNLOCK;\n` +
    "GRANT ALL PRIVILEGES ON *.* TO 'os_admin'@'localhost' WITH GRANT OPTION;\n" +
    'FLUSH PRIVILEGES;\n'
  );
}

/**
 * The client loading a backup's SQL into the server as os_admin, then `trailer` (a 0600 file,
 * adminTrailer's statements) in the same session: `sh` concatenates the two with a fixed script,
 * every path an argument, nothing secret on a command line. `--binary-mode`: mysqlbinlog's output
 * may hold any bytes. The load fails with the client's exit status.
 */
export const loader = (tools: MysqlTools, adminCnf: string, trailer: string): ToolSpec => ({
  file: '/bin/sh',
  args: [
    '-c',
    'cat - "$1" | "$2" --defaults-extra-file="$3" --binary-mode --max-allowed-packet=1G --batch --silent',
    'guestagent-load',
    trailer,
    tools.mysql,
    adminCnf,
  ],
});
