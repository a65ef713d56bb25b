/**
 * Replication as Trove's strategies do it (trove/guestagent/strategies/
 * replication/mysql_base.py, mariadb_gtid.py, mysql_gtid.py and the service
 * calls they make): the source runs with Trove's rendered replica_source
 * configuration (binary log on), replicas log in as a `slave_xxxxxxxx` user
 * with REPLICATION SLAVE and follow the source by GTID, starting where the
 * snapshot backup ended:
 *
 * - MariaDB: MASTER_USE_GTID=slave_pos from mariabackup's xtrabackup_binlog_info;
 * - MySQL: SOURCE_AUTO_POSITION=1; the snapshot is a logical backup whose
 *   restore already set gtid_purged to the snapshot's GTID set (Trove sets it
 *   from XtraBackup's file). MySQL 8.4 and later have only the REPLICA/SOURCE
 *   statements, which 8.0.23 and later understand too.
 *
 * Values reach SQL as parameters.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { OpContext, Replication, ReplicationUser } from '../../src/datastore.ts';
import { BadRequestError, GuestError } from '../../src/errors.ts';
import { primaryIpv4 } from '../../src/replication.ts';
import { looseRetired, writeOptionFile, type MysqlPaths } from './server.ts';
import type { SqlClient } from './sql.ts';

/** Where Trove's guest keeps the data (its templates name paths under it, e.g. log_bin). */
const TROVE_DATA_DIR = '/var/lib/mysql/data';
/** Trove's start_slave / stop_slave wait (seconds). */
const SLAVE_STATE_TIMEOUT_MS = 180_000;

export interface ReplicationOptions {
  /** Which server it is: the statements differ. */
  flavor: 'mariadb' | 'mysql';
  paths: MysqlPaths;
  sql: () => SqlClient;
  restart: (ctx: OpContext) => Promise<void>;
  /** The [mysql]/[mariadb] section's replication_strategy. */
  strategy: string;
  datastore: string;
}

/**
 * Trove's rendered replication configuration as an option file: only
 * sections, options and comments (no `!include`), and its paths under
 * Trove's data directory moved to this server's.
 */
export function renderReplicationConfig(contents: string, dataDir: string): string {
  const out: string[] = [];
  for (const raw of contents.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    if (/^\[[A-Za-z0-9_.-]+\]$/.test(line)) {
      out.push(line);
      continue;
    }
    const m = /^([A-Za-z][A-Za-z0-9_.-]*)\s*(?:=\s*(.*))?$/.exec(line);
    if (!m) throw new BadRequestError(`the replication configuration has a line that is not an option: ${JSON.stringify(line.slice(0, 100))}`);
    const value = m[2];
    // Options today's servers no longer have (Trove's MySQL replica template sets one) are written loose_.
    const name = looseRetired(m[1]!);
    if (value === undefined) out.push(name);
    else {
      const moved = dataDir !== TROVE_DATA_DIR && value.startsWith(`${TROVE_DATA_DIR}/`) ? join(dataDir, value.slice(TROVE_DATA_DIR.length + 1)) : value;
      out.push(`${name} = ${moved}`);
    }
  }
  if (!out.some((l) => l.startsWith('['))) throw new BadRequestError('the replication configuration has no section');
  return out.join('\n') + '\n';
}

/** The GTID position mariabackup recorded in the restored data (xtrabackup_binlog_info: file, position, GTID). */
export function snapshotGtid(dataDir: string): string {
  const file = join(dataDir, 'xtrabackup_binlog_info');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new GuestError(`Unable to determine the last GTID of the source from ${file}: ${(e as Error).message}`, { cause: e });
  }
  const parts = text.trim().split('\t');
  const gtid = parts.length === 3 ? parts[2]!.trim() : '';
  if (gtid && !/^\d+-\d+-\d+(,\s*\d+-\d+-\d+)*$/.test(gtid)) throw new GuestError(`unexpected GTID ${JSON.stringify(gtid.slice(0, 100))} in ${file}`);
  return gtid;
}

const ANY = new Set(['', '*', '0.0.0.0', '::', '0:0:0:0:0:0:0:0']);

export function createMysqlReplication(o: ReplicationOptions): Replication {
  const { paths } = o;
  const sourceFile = join(paths.confDir, 'zzy-guestagent-replication-source.cnf');
  const replicaFile = join(paths.confDir, 'zzy-guestagent-replication-replica.cnf');

  const mysql = o.flavor === 'mysql';
  // Trove's templates, for when Trove sends none.
  const defaultSource = mysql
    ? '[mysqld]\nlog_bin = mysql-bin.log\nbinlog_format = MIXED\nenforce_gtid_consistency = ON\ngtid_mode = ON\nlog_slave_updates = ON\n'
    : '[mysqld]\nlog_bin = mariadb-bin.log\nbinlog_format = MIXED\nlog_slave_updates = ON\n';
  const defaultReplica = mysql
    ? '[mysqld]\nlog_bin = mysql-bin.log\nbinlog_format = MIXED\nrelay_log = mysql-relay-bin.log\nrelay_log_recovery = 1\nrelay_log_purge = 1\nlog_slave_updates = ON\nenforce_gtid_consistency = ON\ngtid_mode = ON\nread_only = true\n'
    : '[mysqld]\nlog_bin = mariadb-bin.log\nbinlog_format = MIXED\nlog_slave_updates = ON\nread_only = true\n';

  /** The replica's status row (MySQL's names: Source_User, Source_UUID, Replica_IO_Running, ...), or none. */
  const replicaStatus = async (): Promise<Record<string, unknown> | undefined> =>
    (await o.sql().query<Record<string, unknown>>(mysql ? 'SHOW REPLICA STATUS' : 'SHOW SLAVE STATUS'))[0];

  /** Trove's check: MariaDB's Slave_running; MySQL's receiver connection state (performance_schema, as Trove's wait_for_slave_status). */
  const slaveRunning = async (): Promise<boolean> => {
    if (mysql) {
      const rows = await o.sql().query<{ s: string }>('SELECT SERVICE_STATE AS s FROM performance_schema.replication_connection_status');
      return (rows[0]?.s ?? 'OFF').toUpperCase() === 'ON';
    }
    const rows = await o.sql().query<{ Value: string }>("SHOW GLOBAL STATUS LIKE 'Slave_running'");
    return (rows[0]?.Value ?? 'OFF').toUpperCase() === 'ON';
  };
  const waitSlave = async (running: boolean, ctx: OpContext): Promise<void> => {
    const deadline = Date.now() + SLAVE_STATE_TIMEOUT_MS;
    for (;;) {
      if ((await slaveRunning()) === running) return;
      if (Date.now() > deadline || ctx.signal.aborted) {
        // What the replica's IO thread said last is what the operator needs.
        const st = await replicaStatus();
        const why = st ? String(st['Last_IO_Error'] || st['Last_SQL_Error'] || '') : '';
        throw new GuestError(`Replication is not ${running ? 'on' : 'off'} after ${SLAVE_STATE_TIMEOUT_MS / 1000} seconds.${why ? ` ${why}` : ''}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  /** The source's GTID set as one line (MySQL breaks @@gtid_executed after each comma). */
  const gtidExecuted = async (): Promise<string> => {
    const [row] = await o.sql().query<{ g: string }>('SELECT @@GLOBAL.gtid_executed AS g');
    return (row?.g ?? '').replace(/\s+/g, '');
  };

  return {
    strategy: o.strategy,

    async enableAsMaster(contents, ctx) {
      if (existsSync(sourceFile)) return;
      writeOptionFile(sourceFile, renderReplicationConfig(contents ?? defaultSource, paths.dataDir));
      ctx.log.info('replication source configuration written; restarting');
      await o.restart(ctx);
    },

    async demoteMaster(ctx) {
      rmSync(sourceFile, { force: true });
      await o.restart(ctx);
    },

    async createReplicationUser(ctx) {
      // Trove: utils.generate_random_password(16), a name slave_<8 of a uuid>, five more tries on a clash.
      const password = randomBytes(12).toString('base64url');
      for (let attempt = 0; ; attempt++) {
        const name = `slave_${randomUUID().slice(0, 8)}`;
        try {
          await o.sql().query("CREATE USER ?@'%' IDENTIFIED BY ?", [name, password]);
          await o.sql().query("GRANT REPLICATION SLAVE ON *.* TO ?@'%'", [name]);
          ctx.log.info({ user: name }, 'replication user created');
          return { name, password } satisfies ReplicationUser;
        } catch (e) {
          if (attempt >= 5) throw e;
        }
      }
    },

    async masterRef() {
      const [row] = await o.sql().query<{ port: number; bind: string | null }>('SELECT @@port AS port, @@bind_address AS bind');
      const bind = (row?.bind ?? '').trim();
      const host = !ANY.has(bind) && /^[\d.]+$/.test(bind) ? bind : primaryIpv4();
      return { host, port: Number(row?.port) };
    },

    async logPosition() {
      // Trove's MySQL strategy sends none (auto-position needs none); MariaDB's sends the GTID position.
      if (mysql) return {};
      const [row] = await o.sql().query<{ pos: string }>('SELECT @@global.gtid_binlog_pos AS pos');
      return { gtid_pos: row?.pos ?? '' };
    },

    async enableAsSlave(source, contents, ctx) {
      const port = source.master.port;
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new BadRequestError(`invalid source port ${String(port)}`);
      writeOptionFile(replicaFile, renderReplicationConfig(contents ?? defaultReplica, paths.dataDir));
      await o.restart(ctx);
      const s = o.sql();
      const { host } = source.master;
      const { name, password } = source.replicationUser;
      if (mysql) {
        // The snapshot's restore left gtid_purged at the snapshot's GTID set: the source sends what follows.
        // GET_SOURCE_PUBLIC_KEY: the replication user's caching_sha2_password over a connection without TLS.
        await s.query(
          `CHANGE REPLICATION SOURCE TO SOURCE_HOST = ?, SOURCE_PORT = ${String(port)}, SOURCE_USER = ?, SOURCE_PASSWORD = ?, SOURCE_AUTO_POSITION = 1, SOURCE_CONNECT_RETRY = 15, GET_SOURCE_PUBLIC_KEY = 1`,
          [host, name, password],
        );
        await s.query('START REPLICA');
      } else {
        if (source.fromSnapshot) {
          const gtid = snapshotGtid(paths.dataDir);
          await s.query('SET GLOBAL gtid_slave_pos = ?', [gtid]);
          ctx.log.info({ gtid }, 'replication starts at the snapshot backup position');
        }
        await s.query(`CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ${String(port)}, MASTER_USER = ?, MASTER_PASSWORD = ?, MASTER_CONNECT_RETRY = 15, MASTER_USE_GTID = slave_pos`, [host, name, password]);
        await s.query('START SLAVE');
      }
      await waitSlave(true, ctx);
      ctx.log.info({ host, port }, 'replicating from the source');
    },

    async detachSlave(forFailover, ctx) {
      const s = o.sql();
      const status = await replicaStatus();
      if (!status) throw new GuestError('This instance is not a replica: it has no replication source.');
      const user = String(status[mysql ? 'Source_User' : 'Master_User']);
      await s.query(mysql ? 'STOP REPLICA' : 'STOP SLAVE');
      await s.query(mysql ? 'RESET REPLICA ALL' : 'RESET SLAVE ALL');
      await waitSlave(false, ctx);
      if (!forFailover) await s.query("DROP USER IF EXISTS ?@'%'", [user]);
      rmSync(replicaFile, { force: true });
      await o.restart(ctx);
      return { replicationUser: user };
    },

    async makeReadOnly(readOnly) {
      await o.sql().query('SET GLOBAL read_only = ?', [readOnly ? 1 : 0]);
    },

    async latestTxnId() {
      if (mysql) return gtidExecuted();
      const [row] = await o.sql().query<{ pos: string }>('SELECT @@global.gtid_binlog_pos AS pos');
      return row?.pos ?? '';
    },

    async lastTxn() {
      const s = o.sql();
      const status = await replicaStatus();
      if (mysql) {
        // Trove's get_last_txn: the source's UUID and the last transaction number of its set here.
        const sourceUuid = status ? String(status['Source_UUID'] || '') || null : null;
        for (const set of (await gtidExecuted()).split(',')) {
          const parts = set.split(':');
          if (sourceUuid !== null && parts[0] === sourceUuid) return [sourceUuid, Number(parts.at(-1)!.split('-').at(-1))];
        }
        return [sourceUuid, 0];
      }
      const masterId = status ? Number(status['Master_Server_Id']) || null : null;
      const [row] = await s.query<{ pos: string }>('SELECT @@global.gtid_slave_pos AS pos');
      // domain-server-sequence, comma separated: the sequence of the source's server id.
      for (const g of (row?.pos ?? '').split(',')) {
        const parts = g.trim().split('-');
        if (parts.length === 3 && parts[1] === String(masterId)) return [masterId, Number(parts[2])];
      }
      return [masterId, 0];
    },

    async waitForTxn(txn) {
      if (mysql) {
        // A GTID set: uuid[:tag]:interval[:interval...], comma separated.
        if (!/^\s*([0-9A-Fa-f-]{36}(:[A-Za-z_][A-Za-z0-9_]{0,31})?(:\d+(-\d+)?)+(\s*,\s*|\s*$))*$/.test(txn)) throw new BadRequestError(`'${txn.slice(0, 100)}' is not a GTID set`);
        await o.sql().query('SELECT WAIT_FOR_EXECUTED_GTID_SET(?) AS r', [txn]);
        return;
      }
      if (!/^\s*(\d+-\d+-\d+(\s*,\s*\d+-\d+-\d+)*)?\s*$/.test(txn)) throw new BadRequestError(`'${txn.slice(0, 100)}' is not a GTID position`);
      await o.sql().query('SELECT MASTER_GTID_WAIT(?) AS r', [txn]);
    },
  };
}
