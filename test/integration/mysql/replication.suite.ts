// Replication driven as Trove's taskmanager drives it, through Trove's own
// guest API client: the source's snapshot (replication configuration from
// Trove's installed replica_source template, a backup to Swift reported to
// conductor, a replication user), a replica prepared from that snapshot, then
// detach, re-attach from the replica context, and the promote-to-source dance
// (make_read_only, get_latest_txn_id, wait_for_txn, enable_as_master,
// demote_replication_master) with the data checked on both servers each time.
// Run for MariaDB (MariaDBGTIDReplication, mariabackup snapshots) by
// replication.test.ts and for MySQL (MysqlGTIDReplication, logical snapshots)
// by replication-mysql.test.ts.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createMariadbDatastore } from '../../../datastores/mariadb/index.ts';
import { createMysqlDatastore } from '../../../datastores/mysql/index.ts';
import { connectSql } from '../../../datastores/mysql/sql.ts';
import { startTestAgent, type TestAgent } from '../harness/agent.ts';
import { eventually } from '../harness/eventually.ts';
import { freePort } from '../harness/ports.ts';
import { PythonCaller, PythonConductor, type ConductorCast, resultOf as ok, serviceStatus as status } from '../harness/python-peer.ts';

/** The server a run of the suite drives. */
export interface ReplicatedServer {
  /** Trove's datastore manager (and its template directory). */
  manager: 'mariadb' | 'mysql';
  dsVersion: string;
  /** What the agent's configuration says about the server. */
  extraConf: string;
}

export function defineReplicationSuite(server: ReplicatedServer): void {
  const mysql = server.manager === 'mysql';
  const strategy = mysql ? 'MysqlGTIDReplication' : 'MariaDBGTIDReplication';
  const other = mysql ? 'MariaDBGTIDReplication' : 'MysqlGTIDReplication';
  const factory = mysql ? createMysqlDatastore : createMariadbDatastore;
  /** A replica's status row, named as each server names it. */
  const REPLICA_STATUS = mysql ? 'SHOW REPLICA STATUS' : 'SHOW SLAVE STATUS';
  const col = mysql
    ? { io: 'Replica_IO_Running', sql: 'Replica_SQL_Running', host: 'Source_Host', port: 'Source_Port' }
    : { io: 'Slave_IO_Running', sql: 'Slave_SQL_Running', host: 'Master_Host', port: 'Master_Port' };
  /** get_latest_txn_id's answer: MySQL's GTID set, MariaDB's domain-server-sequence. */
  const TXN = mysql ? /^[0-9a-f-]{36}:\d+(-\d+)?(,[0-9a-f-]{36}:\d+(-\d+)?)*$/ : /^0-1-\d+$/;
  const rabbit = inject('rabbit');
  const swift = inject('swift');
  const conductorQueue = `trove-conductor-${randomUUID()}`;
  const KEY = 'repl-key-' + randomUUID();
  const source = randomUUID();
  const replica = randomUUID();
  const replica2 = randomUUID();
  const context = {
    auth_token: swift.token,
    service_catalog: [{ type: 'object-store', name: 'swift', endpoints: [{ region: 'RegionOne', publicURL: swift.storageUrl }] }],
  };
  // What Trove's taskmanager renders (these templates have no variables).
  const TEMPLATES = `/usr/lib/python3/dist-packages/trove/templates/${server.manager}`;
  const SOURCE_CONFIG = readFileSync(`${TEMPLATES}/replica_source.config.template`, 'utf8');
  const REPLICA_CONFIG = readFileSync(`${TEMPLATES}/replica.config.template`, 'utf8');
  const config = (serverId: number) => `[mysqld]\ninnodb_buffer_pool_size = 64M\nserver_id = ${serverId}\n`;
  const agentOpts = { conductorQueue, transportUrl: rabbit.url, key: KEY, manager: server.manager, datastoreVersion: server.dsVersion, extraConf: server.extraConf, factory };

  let a: TestAgent;
  let b: TestAgent;
  let callA: PythonCaller;
  let callB: PythonCaller;
  let callC: PythonCaller;
  let conductor: PythonConductor;
  let portA: number;

  function sqlOf(ta: TestAgent) {
    const pw = /password = (.*)/.exec(readFileSync(`${ta.stateDir}/${server.manager}/os_admin.cnf`, 'utf8'))![1]!;
    return connectSql({ socketPath: `${ta.stateDir}/${server.manager}/run/mysqld.sock`, user: 'os_admin', password: pw });
  }
  async function q<T = Record<string, unknown>>(ta: TestAgent, sql: string, params: unknown[] = []): Promise<T[]> {
    const db = sqlOf(ta);
    try {
      return await db.query<T>(sql, params);
    } finally {
      await db.end();
    }
  }
  const ids = async (ta: TestAgent) => (await q<{ id: number }>(ta, 'SELECT id FROM shop.items ORDER BY id')).map((r) => r.id);

  beforeAll(async () => {
    [callA, callB, callC, conductor] = await Promise.all([
      PythonCaller.start({ url: rabbit.url, guestId: source, key: KEY }),
      PythonCaller.start({ url: rabbit.url, guestId: replica, key: KEY }),
      PythonCaller.start({ url: rabbit.url, guestId: replica2, key: KEY }),
      PythonConductor.start({ url: rabbit.url, keys: { [source]: KEY, [replica]: KEY, [replica2]: KEY }, queue: conductorQueue }),
    ]);
    portA = await freePort();
    a = await startTestAgent({ ...agentOpts, guestId: source, logLevel: 'debug', datastorePort: portA });
    await callA.api('prepare', { memory_mb: 512, packages: '', databases: [{ _name: 'shop' }], users: [], ds_version: server.dsVersion, config_contents: config(1) });
    await conductor.waitHealthy(source, 120_000, () => a.logTail());
    await q(a, 'CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(50))');
    await q(a, "INSERT INTO shop.items VALUES (1, 'apple'), (2, 'pear')");
  }, 180_000);

  afterAll(async () => {
    await a?.agent.stop();
    await b?.agent.stop();
    await Promise.all([callA?.close(), callB?.close(), callC?.close(), conductor?.close()]);
  });

  describe(`${strategy} through Trove`, () => {
    let snapshot: Record<string, any>;
    const snapId = 'snap-' + randomUUID().slice(0, 8);
    let backupDone: ConductorCast;

    it('get_replication_snapshot: binary log on, a snapshot backup reported to conductor, a replication user', async () => {
      expect(ok(await callA.api('backup_required_for_replication'))).toBe(true);
      const from = conductor.received.length;
      snapshot = ok(await callA.api('get_replication_snapshot', {
        snapshot_info: {
          id: snapId, instance_id: source, name: `Replication snapshot for ${replica}`, parent_id: null, tenant_id: 'peer-project', state: 'NEW',
          deleted: false, replica_number: 1, datastore: server.manager, datastore_version: server.dsVersion,
        },
        replica_source_config: SOURCE_CONFIG,
      }, { context })) as Record<string, any>;
      expect(snapshot).toMatchObject({
        dataset: { datastore_manager: server.manager, snapshot_id: snapId },
        replication_strategy: strategy,
        master: { host: '127.0.0.1', port: portA },
        replica_conf: { log_position: {}, replication_user: { name: expect.stringMatching(/^slave_[0-9a-f]{8}$/) } },
      });
      expect(snapshot['dataset']['volume_size']).toBeGreaterThan(0);
      expect(snapshot['replica_conf']['replication_user']['password'].length).toBeGreaterThanOrEqual(16);
      backupDone = await conductor.waitFor((c) => c.method === 'update_backup' && c.kwargs['backup_id'] === snapId && c.kwargs['state'] !== 'BUILDING', 10_000, from);
      expect(backupDone.kwargs).toMatchObject({ state: 'COMPLETED', success: true });
      const [v] = await q<{ log_bin: number; fmt: string }>(a, 'SELECT @@log_bin AS log_bin, @@binlog_format AS fmt');
      expect(v).toEqual({ log_bin: 1, fmt: 'MIXED' });
      const grants = await q<Record<string, string>>(a, `SHOW GRANTS FOR '${snapshot['replica_conf']['replication_user']['name']}'@'%'`);
      expect(Object.values(grants[0]!)[0]).toMatch(/^GRANT REPLICATION SLAVE ON \*\.\* TO/);
      // A second snapshot does not restart the source again: its configuration is in place.
      expect(ok(await callA.api('enable_as_master', { replica_source_config: SOURCE_CONFIG }))).toBeNull();
    }, 120_000);

    it('a replica prepared from the snapshot follows the source, read-only, from where the backup ended', async () => {
      await q(a, "INSERT INTO shop.items VALUES (3, 'plum')"); // after the snapshot: only replication brings it
      b = await startTestAgent({ ...agentOpts, guestId: replica, logLevel: 'debug', datastorePort: await freePort() });
      ok(await callB.api('prepare', {
        memory_mb: 512, packages: '', databases: [], users: [], ds_version: server.dsVersion, config_contents: config(2),
        backup_info: { id: snapId, instance_id: source, location: backupDone.kwargs['location'], checksum: backupDone.kwargs['checksum'], type: 'InnoBackupEx' },
        snapshot: { ...snapshot, config: REPLICA_CONFIG },
      }, { context }));
      const done = await conductor.waitFor((c) => c.kwargs['instance_id'] === replica && ['healthy', 'failed to spawn'].includes(status(c) ?? ''), 180_000);
      expect(status(done), b.logTail()).toBe('healthy');
      await eventually(async () => (await ids(b)).length === 3);
      expect(await ids(b)).toEqual([1, 2, 3]);
      const [st] = await q<Record<string, unknown>>(b, REPLICA_STATUS);
      expect(st).toMatchObject({ [col.io]: 'Yes', [col.sql]: 'Yes', [col.host]: '127.0.0.1', [col.port]: portA, ...(mysql ? { Auto_Position: 1 } : { Using_Gtid: 'Slave_Pos' }) });
      expect((await q<{ ro: number }>(b, 'SELECT @@read_only AS ro'))[0]!.ro).toBe(1);
      // Neither agent logs the replication password, at any level (it reached the servers as a value).
      const secret = snapshot['replica_conf']['replication_user']['password'];
      expect(b.logText()).toMatch(/replicating from the source/);
      for (const ta of [a, b]) expect(ta.logText()).not.toContain(secret);
    }, 240_000);

    it('a replica from an incremental snapshot (Trove passes the last backup as parent) starts where the incremental ended', async () => {
      await q(a, 'CREATE TABLE shop.more (id INT PRIMARY KEY)');
      const fullId = 'full-' + randomUUID().slice(0, 8);
      let from = conductor.received.length;
      ok(await callA.api('create_backup', { backup_info: { id: fullId, instance_id: source, datastore: server.manager, datastore_version: server.dsVersion } }, { context }));
      const full = await conductor.waitFor((c) => c.method === 'update_backup' && c.kwargs['backup_id'] === fullId && c.kwargs['state'] !== 'BUILDING', 60_000, from);
      await q(a, 'INSERT INTO shop.more VALUES (100)'); // between the full backup and the snapshot: in the incremental
      const incId = 'snap-inc-' + randomUUID().slice(0, 8);
      from = conductor.received.length;
      const snap = ok(await callA.api('get_replication_snapshot', {
        snapshot_info: {
          id: incId, instance_id: source, parent_id: fullId, datastore: server.manager, datastore_version: server.dsVersion,
          parent: { location: full.kwargs['location'], checksum: full.kwargs['checksum'] },
        },
        replica_source_config: SOURCE_CONFIG,
      }, { context })) as Record<string, any>;
      const inc = await conductor.waitFor((c) => c.method === 'update_backup' && c.kwargs['backup_id'] === incId && c.kwargs['state'] !== 'BUILDING', 10_000, from);
      expect(inc.kwargs).toMatchObject({ state: 'COMPLETED', backup_type: 'incremental' });
      await q(a, 'INSERT INTO shop.more VALUES (101)'); // after the snapshot: replication brings it
      const c = await startTestAgent({ ...agentOpts, guestId: replica2, datastorePort: await freePort() });
      try {
        ok(await callC.api('prepare', {
          memory_mb: 512, packages: '', databases: [], users: [], ds_version: server.dsVersion, config_contents: config(3),
          backup_info: { id: incId, instance_id: source, location: inc.kwargs['location'], checksum: inc.kwargs['checksum'], type: 'InnoBackupEx' },
          snapshot: { ...snap, config: REPLICA_CONFIG },
        }, { context }));
        const done = await conductor.waitFor((x) => x.kwargs['instance_id'] === replica2 && ['healthy', 'failed to spawn'].includes(status(x) ?? ''), 180_000);
        expect(status(done), c.logTail()).toBe('healthy');
        await eventually(async () => (await q(c, 'SELECT id FROM shop.more')).length === 2);
        const [st] = await q<Record<string, unknown>>(c, REPLICA_STATUS);
        // Started from the full backup's position instead, it would replay 100 and stop on a duplicate key.
        expect(st).toMatchObject({ [col.sql]: 'Yes', Last_SQL_Errno: 0 });
        expect(await q(c, 'SELECT id FROM shop.more ORDER BY id')).toEqual([{ id: 100 }, { id: 101 }]);
      } finally {
        await c.agent.stop();
      }
    }, 240_000);

    it('get_latest_txn_id, wait_for_txn and get_last_txn agree on the source\'s GTID', async () => {
      await q(a, "INSERT INTO shop.items VALUES (4, 'fig')");
      const txn = ok(await callA.api('get_latest_txn_id')) as string;
      expect(txn).toMatch(TXN);
      expect(ok(await callB.api('wait_for_txn', { txn }))).toBeNull();
      expect(await ids(b)).toEqual([1, 2, 3, 4]);
      if (mysql) {
        // Trove's answer: the source's UUID and the last number of its GTID set on the replica.
        const [{ uuid }] = (await q<{ uuid: string }>(a, 'SELECT @@server_uuid AS uuid')) as [{ uuid: string }];
        const mine = txn.split(',').find((set) => set.startsWith(uuid))!;
        expect(ok(await callB.api('get_last_txn'))).toEqual([uuid, Number(mine.split('-').at(-1))]);
      } else {
        expect(ok(await callB.api('get_last_txn'))).toEqual([1, Number(txn.split('-')[2])]);
      }
      const bad = await callB.api('wait_for_txn', { txn: mysql ? "3E11FA47-71CA-11E1-9E33-C80AA9429562:1'; DROP DATABASE shop; --" : "0-1-1'; DROP DATABASE shop; --" });
      expect(bad.ok).toBe(false);
      expect(!bad.ok && bad.error.remote_class).toBe('BadRequest');
    }, 60_000);

    it('make_read_only switches the source', async () => {
      ok(await callA.api('make_read_only', { read_only: true }));
      expect((await q<{ ro: number }>(a, 'SELECT @@read_only AS ro'))[0]!.ro).toBe(1);
      ok(await callA.api('make_read_only', { read_only: false }));
      expect((await q<{ ro: number }>(a, 'SELECT @@read_only AS ro'))[0]!.ro).toBe(0);
    });

    it('detach_replica stops replication, drops the replication user and leaves a writable instance', async () => {
      const r = ok(await callB.api('detach_replica', { for_failover: false })) as { replication_user: string };
      expect(r).toEqual({ replication_user: snapshot['replica_conf']['replication_user']['name'] });
      expect(await q(b, REPLICA_STATUS)).toEqual([]);
      expect((await q<{ ro: number }>(b, 'SELECT @@read_only AS ro'))[0]!.ro).toBe(0);
      expect(await q(b, 'SELECT User FROM mysql.user WHERE User = ?', [r.replication_user])).toEqual([]);
      await q(a, "INSERT INTO shop.items VALUES (5, 'kiwi')");
      await new Promise((res) => setTimeout(res, 1000));
      expect(await ids(b)).toEqual([1, 2, 3, 4]);
      const again = await callB.api('detach_replica', {});
      expect(!again.ok && again.error.remote_message).toMatch(/not a replica/);
    }, 60_000);

    it('attach_replica from the source\'s replica context catches up from where it stopped', async () => {
      const ctxA = ok(await callA.api('get_replica_context')) as Record<string, any>;
      // MariaDB's strategy sends its GTID position; MySQL's auto-position needs none (Trove sends {}).
      expect(ctxA).toMatchObject({ master: { host: '127.0.0.1', port: portA }, replica_conf: { log_position: mysql ? {} : { gtid_pos: expect.stringMatching(/^0-1-\d+$/) } } });
      ok(await callB.api('attach_replica', { replica_info: ctxA, slave_config: REPLICA_CONFIG, restart: true }));
      await eventually(async () => (await ids(b)).length === 5);
      expect(await ids(b)).toEqual([1, 2, 3, 4, 5]);
    }, 60_000);

    it('promotes the replica to source and demotes the old source to its replica, as Trove\'s promote does', async () => {
      ok(await callA.api('make_read_only', { read_only: true }));
      const txn = ok(await callA.api('get_latest_txn_id')) as string;
      ok(await callB.api('wait_for_txn', { txn }));
      ok(await callB.api('detach_replica', { for_failover: true }));
      ok(await callB.api('enable_as_master', { replica_source_config: SOURCE_CONFIG }));
      ok(await callB.api('make_read_only', { read_only: false }));
      const ctxB = ok(await callB.api('get_replica_context')) as Record<string, any>;
      ok(await callA.api('attach_replica', { replica_info: ctxB, slave_config: REPLICA_CONFIG, restart: false }));
      ok(await callA.api('demote_replication_master'));
      await q(b, "INSERT INTO shop.items VALUES (6, 'lime')");
      await eventually(async () => (await ids(a)).length === 6);
      expect(await ids(a)).toEqual([1, 2, 3, 4, 5, 6]);
      expect((await q<{ ro: number }>(a, 'SELECT @@read_only AS ro'))[0]!.ro).toBe(1);
      const [st] = await q<Record<string, unknown>>(a, REPLICA_STATUS);
      expect(st).toMatchObject({ [col.io]: 'Yes', [col.sql]: 'Yes', [col.port]: ctxB['master']['port'] });
    }, 120_000);

    it('attach_replica refuses another replication strategy without touching the server', async () => {
      const ctxB = ok(await callB.api('get_replica_context')) as Record<string, any>;
      const r = await callA.api('attach_replica', { replica_info: { ...ctxB, replication_strategy: other, dataset: { dataset_size: 0.1 } }, slave_config: REPLICA_CONFIG });
      expect(r.ok).toBe(false);
      expect(!r.ok && r.error.remote_class).toBe('IncompatibleReplicationStrategy');
      expect(!r.ok && r.error.remote_message).toContain(`Instance with replication strategy ${strategy} cannot replicate from instance with replication strategy ${other}.`);
      const [st] = await q<Record<string, unknown>>(a, REPLICA_STATUS);
      expect(st).toMatchObject({ [col.io]: 'Yes' });
    }, 60_000);

    it('ejects a dead source as Trove\'s eject_replica_source does: the replica with the newest transaction takes over', async () => {
      // B is the source now and A its replica (the promote above). B's guest dies with its server.
      await q(b, "INSERT INTO shop.items VALUES (7, 'date')");
      await eventually(async () => (await ids(a)).length === 7);
      const uuidB = mysql ? (await q<{ uuid: string }>(b, 'SELECT @@server_uuid AS uuid'))[0]!.uuid : null;
      await b.agent.stop();
      const [masterId, last] = ok(await callA.api('get_last_txn')) as [number | string, number];
      expect(masterId).toBe(mysql ? uuidB : 2);
      expect(last).toBeGreaterThan(0);
      ok(await callA.api('detach_replica', { for_failover: true }));
      ok(await callA.api('enable_as_master', { replica_source_config: SOURCE_CONFIG }));
      ok(await callA.api('make_read_only', { read_only: false }));
      await q(a, "INSERT INTO shop.items VALUES (8, 'yuzu')");
      expect(await ids(a)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      expect(await q(a, REPLICA_STATUS)).toEqual([]);
      expect((await q<{ log_bin: number }>(a, 'SELECT @@log_bin AS log_bin'))[0]!.log_bin).toBe(1);
    }, 120_000);
  });
}
