// PostgreSQL streaming replication driven as Trove's taskmanager drives it,
// through Trove's own guest API client: the source's snapshot (a replicator
// role, a backup reported to conductor), a replica prepared from it (a hot
// standby streaming from the source), WAL positions (get_latest_txn_id,
// wait_for_txn), then Trove's promote: the replica promoted, the old source
// attached to it without a restart and demoted (pg_rewind onto the new
// source), rows flowing the other way.
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createPostgresDatastore } from '../../../datastores/postgresql/index.ts';
import { openedForPostgres, startTestAgent, type TestAgent } from '../harness/agent.ts';
import { eventually } from '../harness/eventually.ts';
import { freePort } from '../harness/ports.ts';
import { PythonCaller, PythonConductor, resultOf as ok, serviceStatus as status } from '../harness/python-peer.ts';

const rabbit = inject('rabbit');
const swift = inject('swift');
const conductorQueue = `trove-conductor-${randomUUID()}`;
const KEY = 'pg-repl-key-' + randomUUID();
const source = randomUUID();
const replica = randomUUID();
const orphan = randomUUID();
const context = {
  auth_token: swift.token,
  service_catalog: [{ type: 'object-store', name: 'swift', endpoints: [{ region: 'RegionOne', publicURL: swift.storageUrl }] }],
};
// Trove's PostgreSQL template turns these on; pg_rewind (demote) needs wal_log_hints.
const CONFIG = "max_connections = 50\nshared_buffers = '32MB'\nwal_log_hints = on\n";
const TEMPLATES = '/usr/lib/python3/dist-packages/trove/templates/postgresql';

let a: TestAgent;
let b: TestAgent;
let portA: number;
let portB: number;
let callA: PythonCaller;
let callB: PythonCaller;
let conductor: PythonConductor;
/** The test's own login: the source's os_admin password (a replica has the same roles). */
let adminPw = '';
async function q<T = Record<string, unknown>>(ta: TestAgent, port: number, sql: string): Promise<T[]> {
  const c = new pg.Client({ host: `${ta.stateDir}/postgresql/run`, port, user: 'os_admin', password: adminPw, database: 'app' });
  await c.connect();
  try {
    return (await c.query(sql)).rows as T[];
  } finally {
    await c.end();
  }
}
const ids = async (ta: TestAgent, port: number) => (await q<{ id: number }>(ta, port, 'SELECT id FROM items ORDER BY id')).map((r) => r.id);

beforeAll(async () => {
  [callA, callB, conductor] = await Promise.all([
    PythonCaller.start({ url: rabbit.url, guestId: source, key: KEY }),
    PythonCaller.start({ url: rabbit.url, guestId: replica, key: KEY }),
    PythonConductor.start({ url: rabbit.url, keys: { [source]: KEY, [replica]: KEY, [orphan]: KEY }, queue: conductorQueue }),
  ]);
  portA = await freePort();
  a = openedForPostgres(await startTestAgent({ conductorQueue, transportUrl: rabbit.url, guestId: source, key: KEY, logLevel: 'debug', datastorePort: portA, factory: createPostgresDatastore, manager: 'postgresql', reportInterval: 1 }));
  ok(await callA.api('prepare', { memory_mb: 512, packages: '', ds_version: '15', config_contents: CONFIG, databases: [{ _name: 'app' }], users: [] }));
  await conductor.waitHealthy(source, 120_000, () => a.logTail());
  adminPw = readFileSync(`${a.stateDir}/postgresql/os_admin.pass`, 'utf8').trim();
  await q(a, portA, 'CREATE TABLE items (id int PRIMARY KEY)');
  await q(a, portA, 'INSERT INTO items VALUES (1), (2)');
}, 180_000);

afterAll(async () => {
  await a?.agent.stop();
  await b?.agent.stop();
  await Promise.all([callA?.close(), callB?.close(), conductor?.close()]);
});

describe('PostgreSQL streaming replication through Trove', () => {
  let snapshot: Record<string, any>;
  const snapId = 'pgsnap-' + randomUUID().slice(0, 8);

  it('get_replication_snapshot: a replicator role, the snapshot backup reported to conductor', async () => {
    const from = conductor.received.length;
    snapshot = ok(await callA.api('get_replication_snapshot', {
      snapshot_info: { id: snapId, instance_id: source, parent_id: null, datastore: 'postgresql', datastore_version: '15' },
      replica_source_config: readFileSync(`${TEMPLATES}/replica_source.config.template`, 'utf8'),
    }, { context })) as Record<string, any>;
    expect(snapshot).toMatchObject({
      dataset: { datastore_manager: 'postgresql', snapshot_id: snapId },
      replication_strategy: 'PostgresqlReplicationStreaming',
      master: { host: '127.0.0.1', port: portA },
      replica_conf: { replication_user: { name: 'replicator' } },
    });
    const done = await conductor.waitFor((c) => c.method === 'update_backup' && c.kwargs['backup_id'] === snapId && c.kwargs['state'] !== 'BUILDING', 10_000, from);
    expect(done.kwargs).toMatchObject({ state: 'COMPLETED', success: true });
    snapshot['backup'] = { location: done.kwargs['location'], checksum: done.kwargs['checksum'] };
    expect(await q(a, portA, "SELECT rolreplication, rolsuper FROM pg_roles WHERE rolname = 'replicator'")).toEqual([{ rolreplication: true, rolsuper: true }]);
  }, 120_000);

  it('a replica prepared from the snapshot streams from the source as a hot standby', async () => {
    await q(a, portA, 'INSERT INTO items VALUES (3)'); // after the snapshot: only streaming brings it
    portB = await freePort();
    b = openedForPostgres(await startTestAgent({ conductorQueue, transportUrl: rabbit.url, guestId: replica, key: KEY, logLevel: 'debug', datastorePort: portB, factory: createPostgresDatastore, manager: 'postgresql', reportInterval: 1 }));
    const { backup, ...snap } = snapshot;
    ok(await callB.api('prepare', {
      memory_mb: 512, packages: '', ds_version: '15', config_contents: CONFIG, databases: [], users: [],
      backup_info: { id: snapId, instance_id: source, location: backup.location, checksum: backup.checksum, type: null },
      snapshot: { ...snap, config: readFileSync(`${TEMPLATES}/replica.config.template`, 'utf8') },
    }, { context }));
    const done = await conductor.waitFor((c) => c.kwargs['instance_id'] === replica && ['healthy', 'failed to spawn'].includes(status(c) ?? ''), 180_000);
    expect(status(done), b.logTail()).toBe('healthy');
    await eventually(async () => (await ids(b, portB)).length === 3);
    expect(await q(b, portB, 'SELECT pg_is_in_recovery() AS r')).toEqual([{ r: true }]);
    expect((await q<{ s: string }>(a, portA, "SELECT state AS s FROM pg_stat_replication WHERE usename = 'replicator'"))[0]?.s).toBe('streaming');
    // The agent on the replica works through its own local login: Trove's calls answer.
    expect((ok(await callB.api('list_databases')) as [Array<{ _name: string }>])[0].map((d) => d._name)).toContain('app');
    // Neither agent logs the replication password, at any level.
    const secret = snapshot['replica_conf']['replication_user']['password'];
    expect(b.logText()).toMatch(/standby of the source/);
    for (const ta of [a, b]) expect(ta.logText()).not.toContain(secret);
  }, 240_000);

  it('get_latest_txn_id on the source, wait_for_txn on the replica', async () => {
    await q(a, portA, 'INSERT INTO items VALUES (4)');
    const txn = ok(await callA.api('get_latest_txn_id')) as string;
    expect(txn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    ok(await callB.api('wait_for_txn', { txn }));
    expect(await ids(b, portB)).toEqual([1, 2, 3, 4]);
    const bad = await callA.api('wait_for_txn', { txn });
    expect(!bad.ok && bad.error.remote_message).toMatch(/non-replica/);
  }, 60_000);

  it('promote: the replica becomes the source and the old source, rewound, follows it', async () => {
    ok(await callA.api('make_read_only', { read_only: true }));
    await expect(q(a, portA, 'INSERT INTO items VALUES (99)')).rejects.toThrow(/read-only transaction/);
    const txn = ok(await callA.api('get_latest_txn_id')) as string;
    ok(await callB.api('wait_for_txn', { txn }));
    expect(ok(await callB.api('detach_replica', { for_failover: true }))).toBeNull();
    expect(await q(b, portB, 'SELECT pg_is_in_recovery() AS r')).toEqual([{ r: false }]);
    ok(await callB.api('enable_as_master', { replica_source_config: readFileSync(`${TEMPLATES}/replica_source.config.template`, 'utf8') }));
    ok(await callB.api('make_read_only', { read_only: false }));
    await q(b, portB, 'INSERT INTO items VALUES (5)');
    const ctxB = ok(await callB.api('get_replica_context')) as Record<string, any>;
    expect(ctxB).toMatchObject({ master: { host: '127.0.0.1', port: portB }, replica_conf: { replication_user: { name: 'replicator' } } });
    ok(await callA.api('attach_replica', { replica_info: ctxB, slave_config: readFileSync(`${TEMPLATES}/replica.config.template`, 'utf8'), restart: false }));
    ok(await callA.api('demote_replication_master'));
    ok(await callA.api('make_read_only', { read_only: false }));
    await eventually(async () => (await ids(a, portA)).length === 5);
    expect(await ids(a, portA)).toEqual([1, 2, 3, 4, 5]);
    expect(await q(a, portA, 'SELECT pg_is_in_recovery() AS r')).toEqual([{ r: true }]);
  }, 180_000);

  it('rebuild of a replica (a new root disk over its volume): back as a standby of its source, the agent answering', async () => {
    // A follows B since the promote above. A new image: no agent state, the data volume moved over.
    await a.agent.stop();
    const fresh = mkdtempSync(join(tmpdir(), 'ga-pg-rebuilt-replica-'));
    mkdirSync(join(fresh, 'state', 'postgresql'), { recursive: true });
    for (const d of ['data', 'wal_archive']) renameSync(`${a.stateDir}/postgresql/${d}`, join(fresh, 'state', 'postgresql', d));
    a = openedForPostgres(await startTestAgent({ conductorQueue, transportUrl: rabbit.url, guestId: source, key: KEY, logLevel: 'debug', datastorePort: portA, factory: createPostgresDatastore, manager: 'postgresql', reportInterval: 1, root: fresh }));
    const from = conductor.received.length;
    ok(await callA.api('rebuild', { ds_version: '15', config_contents: CONFIG, config_overrides: {} }));
    const end = await conductor.waitFor((c) => c.kwargs['instance_id'] === source && ['healthy', 'failed to spawn'].includes(status(c) ?? ''), 120_000, from);
    expect(status(end), a.logTail()).toBe('healthy');
    expect(await q(a, portA, 'SELECT pg_is_in_recovery() AS r')).toEqual([{ r: true }]);
    await q(b, portB, 'INSERT INTO items VALUES (6)');
    await eventually(async () => (await ids(a, portA)).length === 6);
    expect((ok(await callA.api('list_databases')) as [Array<{ _name: string }>])[0].map((d) => d._name)).toContain('app');
  }, 180_000);

  it('a replica without the snapshot backup is refused with the reason (a fresh initdb could never follow its source)', async () => {
    const guest = orphan;
    const caller = await PythonCaller.start({ url: rabbit.url, guestId: guest, key: KEY });
    const c = openedForPostgres(await startTestAgent({ conductorQueue, transportUrl: rabbit.url, guestId: guest, key: KEY, datastorePort: await freePort(), factory: createPostgresDatastore, manager: 'postgresql', reportInterval: 1 }));
    try {
      const from = conductor.received.length;
      ok(await caller.api('prepare', { memory_mb: 512, packages: '', ds_version: '15', config_contents: CONFIG, databases: [], users: [], snapshot: { ...snapshot, backup: undefined } }));
      const end = await conductor.waitFor((x) => x.kwargs['instance_id'] === guest && status(x) === 'failed to spawn', 60_000, from);
      expect(status(end)).toBe('failed to spawn');
      expect(c.logTail()).toContain('prepare got a snapshot without backup_info');
    } finally {
      await c.agent.stop();
      await caller.close();
    }
  }, 120_000);
});
