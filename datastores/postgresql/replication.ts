/**
 * PostgreSQL streaming replication as Trove 18's PostgresqlReplicationStreaming
 * does it (trove/guestagent/strategies/replication/postgresql.py and the
 * postgres manager): the source has a `replicator` role (REPLICATION
 * SUPERUSER LOGIN, as Trove's: pg_rewind needs a superuser) whose password
 * lives in the data directory's `.replpass` (so it travels with the snapshot
 * and a promoted replica still has it); a replica is the snapshot backup
 * restored with `standby.signal` and `primary_conninfo`; detach promotes it
 * (pg_promote); demote rewinds an old source onto the new one (pg_rewind).
 * The password reaches pg_rewind through its environment, never argv.
 */
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { OpContext, Replication } from '../../src/datastore.ts';
import { BadRequestError, GuestError, OperationNotSupportedError } from '../../src/errors.ts';
import { exec } from '../../src/process/exec.ts';
import { primaryIpv4 } from '../../src/replication.ts';
import type { ServiceRunner } from '../../src/service/runner.ts';

export const REPL_USER = 'replicator';
/** This server's own configuration files in its data directory (with every guestagent-*.conf). */
const KEEP = new Set(['postgresql.conf', 'postgresql.auto.conf', 'pg_hba.conf', 'pg_ident.conf']);

export interface PgReplicationOptions {
  dataDir: string;
  bin: string;
  owner: { uid: number; gid: number };
  port: () => number;
  runner: ServiceRunner;
  withClient<T>(fn: (c: pg.Client) => Promise<T>): Promise<T>;
  reload(ctx: OpContext): Promise<void>;
  /** Rewrites pg_hba.conf (its rules let the replicator in). */
  writeHba(): void;
  strategy: string;
}

/** A libpq conninfo value, single-quoted with ' and \ escaped. */
const cv = (v: string | number): string => `'${String(v).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** primary_conninfo without the password (it is in the standby's own copy of .replpass-like file below). */
export function conninfo(host: string, port: number, user: string, password: string | null): string {
  if (!/^[A-Za-z0-9_.:-]+$/.test(host)) throw new BadRequestError(`'${host.slice(0, 100)}' is not a host name or address`);
  return [`host=${cv(host)}`, `port=${cv(port)}`, 'dbname=postgres', `user=${cv(user)}`, ...(password === null ? [] : [`password=${cv(password)}`]), `application_name=${cv('guestagent')}`].join(' ');
}

export function createPgReplication(o: PgReplicationOptions): Replication {
  const replpass = join(o.dataDir, '.replpass');
  /** primary_conninfo, read after the agent's other settings; 0600: it carries the replicator's password. */
  const replicaConf = join(o.dataDir, 'guestagent-replication.conf');
  const readOnlyConf = join(o.dataDir, 'guestagent-readonly.conf');
  const own = (file: string, text: string) => {
    writeFileSync(file, text, { mode: 0o600 });
    chownSync(file, o.owner.uid, o.owner.gid);
  };
  const inRecovery = () => o.withClient(async (c) => (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r);

  /** Trove's _get_or_create_replication_user: the role and its password file agree, or both are made anew. */
  async function replicationUser(ctx: OpContext): Promise<{ name: string; password: string }> {
    const exists = await o.withClient(async (c) => (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [REPL_USER])).rowCount! > 0);
    if (exists && existsSync(replpass)) return { name: REPL_USER, password: readFileSync(replpass, 'utf8').trim() };
    const password = randomBytes(24).toString('base64url');
    await o.withClient(async (c) => {
      if (exists) await c.query(`DROP ROLE ${REPL_USER}`);
      // Values cannot be parameters in CREATE ROLE: quoted with the driver's escaping, as the agent's other role statements.
      await c.query(`CREATE ROLE ${REPL_USER} WITH REPLICATION SUPERUSER LOGIN PASSWORD ${pg.escapeLiteral(password)}`);
    });
    own(replpass, password + '\n');
    ctx.log.info({ user: REPL_USER }, 'replication user created');
    return { name: REPL_USER, password };
  }

  return {
    strategy: o.strategy,

    async enableAsMaster(_contents, ctx) {
      // Trove's rule for the replicator over the network (scram-sha-256 here), in force by a reload.
      await replicationUser(ctx);
      o.writeHba();
      await o.reload(ctx);
    },

    async demoteMaster(ctx) {
      // The old source, told where the new one is by attach_replica(restart=False): rewind it onto it.
      const info = existsSync(replicaConf) ? /^primary_conninfo = '(.*)'$/m.exec(readFileSync(replicaConf, 'utf8'))?.[1] : undefined;
      if (!info) throw new GuestError('demote_replication_master needs the new source: attach_replica must come first.');
      const conn = info.replace(/''/g, "'");
      const password = /password='((?:[^'\\]|\\.)*)'/.exec(conn)?.[1]?.replace(/\\(.)/g, '$1') ?? '';
      await o.runner.stop(ctx);
      // pg_rewind copies the new source's files, its configuration too: this server's own
      // (kept in the data directory, with its own paths and primary_conninfo) go back after it.
      const own0 = readdirSync(o.dataDir).filter((f) => KEEP.has(f) || f.startsWith('guestagent-'));
      const saved = new Map(own0.map((f) => [f, readFileSync(join(o.dataDir, f))]));
      await exec(join(o.bin, 'pg_rewind'), [`--target-pgdata=${o.dataDir}`, `--source-server=${conn.replace(/\s*password='(?:[^'\\]|\\.)*'/, '')}`, '--restore-target-wal', '--progress'], {
        uid: o.owner.uid, gid: o.owner.gid, env: { PGPASSWORD: password }, signal: ctx.signal, log: ctx.log, timeoutMs: 3600_000,
      });
      for (const f of readdirSync(o.dataDir)) if (f.startsWith('guestagent-') && !saved.has(f)) rmSync(join(o.dataDir, f), { force: true });
      for (const [f, data] of saved) {
        writeFileSync(join(o.dataDir, f), data, { mode: 0o600 });
        chownSync(join(o.dataDir, f), o.owner.uid, o.owner.gid);
      }
      own(join(o.dataDir, 'standby.signal'), '');
      await o.runner.start(ctx);
      ctx.log.info('rewound onto the new source and following it');
    },

    async createReplicationUser(ctx) {
      return replicationUser(ctx);
    },

    async masterRef() {
      const listen = await o.withClient(async (c) => (await c.query<{ l: string }>("SELECT current_setting('listen_addresses') AS l")).rows[0]!.l.trim());
      const host = /^[\d.]+$/.test(listen) && listen !== '0.0.0.0' ? listen : primaryIpv4();
      return { host, port: o.port() };
    },

    async logPosition() {
      return {};
    },

    async enableAsSlave(source, _contents, ctx, restart) {
      own(replicaConf, `primary_conninfo = '${conninfo(source.master.host, source.master.port, source.replicationUser.name, source.replicationUser.password).replace(/'/g, "''")}'\n`);
      rmSync(join(o.dataDir, 'recovery.signal'), { force: true });
      own(join(o.dataDir, 'standby.signal'), '');
      if (restart) await o.runner.restart(ctx);
      ctx.log.info({ host: source.master.host, port: source.master.port, restarted: restart }, 'standby of the source');
    },

    async detachSlave(_forFailover, ctx) {
      if (!(await inRecovery())) throw new GuestError('This instance is not a replica: it is not in recovery.');
      await o.withClient((c) => c.query('SELECT pg_promote()'));
      const deadline = Date.now() + 60_000;
      while (await inRecovery()) {
        if (Date.now() > deadline) throw new GuestError('Timeout occurred waiting for replica to exit standby mode');
        await new Promise((r) => setTimeout(r, 200));
      }
      ctx.log.info('promoted: no longer a standby');
      return null;
    },

    async makeReadOnly(readOnly, ctx) {
      // Trove's PostgreSQL manager does nothing here; new transactions default to read-only instead.
      if (readOnly) own(readOnlyConf, 'default_transaction_read_only = on\n');
      else rmSync(readOnlyConf, { force: true });
      await o.reload(ctx);
    },

    async latestTxnId() {
      return o.withClient(async (c) => (await c.query<{ l: string }>('SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text AS l')).rows[0]!.l);
    },

    async lastTxn() {
      throw new OperationNotSupportedError('get_last_txn', 'postgresql');
    },

    async waitForTxn(txn) {
      if (!/^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i.test(txn)) throw new BadRequestError(`'${txn.slice(0, 100)}' is not a WAL location`);
      if (!(await inRecovery())) throw new GuestError('Attempting to wait for a txn on a non-replica server');
      const deadline = Date.now() + 60_000;
      while (!(await o.withClient(async (c) => (await c.query<{ ok: boolean }>('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok', [txn])).rows[0]!.ok))) {
        if (Date.now() > deadline) throw new GuestError(`Timeout occurred waiting for wal offset to change to ${txn}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
  };
}
