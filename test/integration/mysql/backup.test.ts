// Backups of a MariaDB instance into a real Swift, full then incremental,
// sent by Trove's own client with the user's token and service catalog, and
// a new instance prepared from the incremental one with all the data back.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createMysqlDatastore } from '../../../datastores/mysql/index.ts';
import { startTestAgent, type TestAgent } from '../harness/agent.ts';
import { freePort } from '../harness/ports.ts';
import { PythonCaller, PythonConductor, type ConductorCast, serviceStatus as status } from '../harness/python-peer.ts';
import { connectSql } from '../../../datastores/mysql/sql.ts';
import { readdirSync, readFileSync } from 'node:fs';
import { createSwiftClient } from '../../../src/backup/swift-client.ts';

const rabbit = inject('rabbit');
const conductorQueue = `trove-conductor-${randomUUID()}`;
const swift = inject('swift');
const KEY = 'backup-key-' + randomUUID();
const source = randomUUID();
const target = randomUUID();
const context = {
  auth_token: swift.token,
  service_catalog: [{ type: 'object-store', name: 'swift', endpoints: [{ region: 'RegionOne', publicURL: swift.storageUrl }] }],
};
let a: TestAgent;
let b: TestAgent;
let callA: PythonCaller;
let callB: PythonCaller;
let conductor: PythonConductor;

function adminSql(ta: TestAgent) {
  const pw = /password = (.*)/.exec(readFileSync(`${ta.stateDir}/mysql/os_admin.cnf`, 'utf8'))![1]!;
  return connectSql({ socketPath: `${ta.stateDir}/mysql/run/mysqld.sock`, user: 'os_admin', password: pw });
}
const prepareArgs = { memory_mb: 512, packages: '', databases: [], users: [], ds_version: '10.11', config_contents: '[mysqld]\ninnodb_buffer_pool_size = 64M\n' };

beforeAll(async () => {
  [callA, callB, conductor] = await Promise.all([
    PythonCaller.start({ url: rabbit.url, guestId: source, key: KEY }),
    PythonCaller.start({ url: rabbit.url, guestId: target, key: KEY }),
    PythonConductor.start({ url: rabbit.url, keys: { [source]: KEY, [target]: KEY }, queue: conductorQueue }),
  ]);
  a = await startTestAgent({ conductorQueue, transportUrl: rabbit.url, guestId: source, key: KEY, datastorePort: await freePort(), factory: createMysqlDatastore });
  await callA.api('prepare', { ...prepareArgs, databases: [{ _name: 'shop' }] });
  await conductor.waitFor((c) => c.kwargs['instance_id'] === source && status(c) === 'healthy', 120_000);
}, 180_000);

afterAll(async () => {
  await a?.agent.stop();
  await b?.agent.stop();
  await Promise.all([callA?.close(), callB?.close(), conductor?.close()]);
});

async function backup(id: string, parent: { location: string; checksum: string } | null): Promise<ConductorCast> {
  const from = conductor.received.length;
  const r = await callA.api('create_backup', {
    backup_info: { id, instance_id: source, location: null, type: 'InnoBackupEx', checksum: null, datastore: 'mariadb', datastore_version: '10.11', ...(parent ? { parent } : {}) },
  }, { context, notification: true });
  expect(r).toEqual({ ok: true, result: null });
  const building = await conductor.waitFor((c) => c.method === 'update_backup' && c.kwargs['backup_id'] === id, 30_000, from);
  expect(building.kwargs).toMatchObject({ state: 'BUILDING', backup_type: parent ? 'incremental' : 'full', instance_id: source });
  const done = await conductor.waitFor((c) => c.method === 'update_backup' && c.kwargs['backup_id'] === id && c.kwargs['state'] !== 'BUILDING', 120_000, from);
  expect(done.kwargs, JSON.stringify(done.kwargs)).toMatchObject({ state: 'COMPLETED', success: true });
  return done;
}

describe('mariabackup to Swift and back', () => {
  let full: ConductorCast;
  let inc: ConductorCast;

  it('streams a full backup named and tagged as Trove does', async () => {
    const db = adminSql(a);
    await db.query('CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(50))');
    await db.query("INSERT INTO shop.items VALUES (1, 'apple'), (2, 'pear')");
    await db.end();
    full = await backup('b-full-' + randomUUID().slice(0, 8), null);
    const loc = String(full.kwargs['location']);
    expect(loc).toMatch(new RegExp(`^${swift.storageUrl}/database_backups/b-full-[0-9a-f]{8}\\.xbstream\\.gz$`));
    const client = createSwiftClient({ storageUrl: swift.storageUrl, token: swift.token });
    const head = await client.head('database_backups', loc.split('/').at(-1)!);
    expect(head.etag).toBe(full.kwargs['checksum']);
    expect(head.headers['x-object-meta-datastore']).toBe('mariadb');
    expect(head.headers['x-object-meta-datastore-version']).toBe('10.11');
    expect(Number(head.headers['x-object-meta-lsn'])).toBeGreaterThan(0);
  });

  it('streams an incremental backup on top, from the parent LSN', async () => {
    const db = adminSql(a);
    await db.query("INSERT INTO shop.items VALUES (3, 'plum')");
    await db.end();
    inc = await backup('b-inc-' + randomUUID().slice(0, 8), { location: String(full.kwargs['location']), checksum: String(full.kwargs['checksum']) });
    const client = createSwiftClient({ storageUrl: swift.storageUrl, token: swift.token });
    const head = await client.head('database_backups', String(inc.kwargs['location']).split('/').at(-1)!);
    expect(head.headers['x-object-meta-parent-location']).toBe(full.kwargs['location']);
  });

  it('prepares a new instance from the incremental backup with all the rows', async () => {
    b = await startTestAgent({ conductorQueue, transportUrl: rabbit.url, guestId: target, key: KEY, datastorePort: await freePort(), factory: createMysqlDatastore });
    const r = await callB.api('prepare', {
      ...prepareArgs,
      backup_info: { id: 'restore', location: inc.kwargs['location'], checksum: inc.kwargs['checksum'], type: 'InnoBackupEx' },
    }, { context });
    expect(r.ok).toBe(true);
    await conductor.waitFor((c) => c.kwargs['instance_id'] === target && status(c) === 'healthy', 180_000);
    const db = adminSql(b);
    expect(await db.query('SELECT id, name FROM shop.items ORDER BY id')).toEqual([
      { id: 1, name: 'apple' }, { id: 2, name: 'pear' }, { id: 3, name: 'plum' },
    ]);
    await db.end();
    // The new os_admin password went in through a one-off init file: neither it nor its option is left.
    expect(readdirSync(`${b.stateDir}/mysql/conf.d`).filter((f) => /init|oneoff/.test(f))).toEqual([]);
    const dbs = await callB.api('list_databases');
    expect(dbs.ok && (dbs.result as [Array<{ _name: string }>])[0].map((d) => d._name)).toEqual(['shop']);
  });

  it('a backup without a token fails cleanly and is reported FAILED', async () => {
    const id = 'b-bad-' + randomUUID().slice(0, 8);
    const from = conductor.received.length;
    await callA.api('create_backup', { backup_info: { id, instance_id: source, datastore: 'mariadb', datastore_version: '10.11' } });
    const done = await conductor.waitFor((c) => c.method === 'update_backup' && c.kwargs['backup_id'] === id && c.kwargs['state'] !== 'BUILDING', 30_000, from);
    expect(done.kwargs).toMatchObject({ state: 'FAILED', success: false });
  });
});
