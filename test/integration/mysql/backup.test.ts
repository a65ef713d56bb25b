// Backups of a MariaDB instance into a real Swift, full then incremental,
// sent by Trove's own client with the user's token and service catalog, and
// a new instance prepared from the incremental one with all the data back.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createMysqlDatastore } from '../../../datastores/mysql/index.ts';
import { startTestAgent, type TestAgent } from '../harness/agent.ts';
import { freePort } from '../harness/ports.ts';
import { PythonCaller, PythonConductor, type ConductorCast, serviceStatus as status } from '../harness/python-peer.ts';
import { connectSql } from '../../../datastores/mysql/sql.ts';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSwiftClient } from '../../../src/backup/swift-client.ts';

const rabbit = inject('rabbit');
const conductorQueue = `trove-conductor-${randomUUID()}`;
const swift = inject('swift');
const KEY = 'backup-key-' + randomUUID();
const source = randomUUID();
const target = randomUUID();
const stopped = randomUUID();
const context = {
  auth_token: swift.token,
  service_catalog: [{ type: 'object-store', name: 'swift', endpoints: [{ region: 'RegionOne', publicURL: swift.storageUrl }] }],
};
let a: TestAgent;
let b: TestAgent;
let callA: PythonCaller;
let callB: PythonCaller;
let callC: PythonCaller;
let conductor: PythonConductor;

function adminSql(ta: TestAgent) {
  const pw = /password = (.*)/.exec(readFileSync(`${ta.stateDir}/mysql/os_admin.cnf`, 'utf8'))![1]!;
  return connectSql({ socketPath: `${ta.stateDir}/mysql/run/mysqld.sock`, user: 'os_admin', password: pw });
}
const prepareArgs = { memory_mb: 512, packages: '', databases: [], users: [], ds_version: '10.11', config_contents: '[mysqld]\ninnodb_buffer_pool_size = 64M\n' };

beforeAll(async () => {
  [callA, callB, callC, conductor] = await Promise.all([
    PythonCaller.start({ url: rabbit.url, guestId: source, key: KEY }),
    PythonCaller.start({ url: rabbit.url, guestId: target, key: KEY }),
    PythonCaller.start({ url: rabbit.url, guestId: stopped, key: KEY }),
    PythonConductor.start({ url: rabbit.url, keys: { [source]: KEY, [target]: KEY, [stopped]: KEY }, queue: conductorQueue }),
  ]);
  a = await startTestAgent({ conductorQueue, transportUrl: rabbit.url, guestId: source, key: KEY, datastorePort: await freePort(), factory: createMysqlDatastore });
  await callA.api('prepare', { ...prepareArgs, databases: [{ _name: 'shop' }] });
  await conductor.waitHealthy(source, 120_000, () => a.logTail());
}, 180_000);

afterAll(async () => {
  await a?.agent.stop();
  await b?.agent.stop();
  await Promise.all([callA?.close(), callB?.close(), callC?.close(), conductor?.close()]);
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

  it('an agent stopped mid-backup kills mariabackup, leaves no segment in Swift, and conductor learns FAILED; a killed one reports it at its next start', async () => {
    // 1 MiB segments and ~150 MB of incompressible rows: the backup is still uploading when the agent stops.
    const c = await startTestAgent({
      conductorQueue, transportUrl: rabbit.url, guestId: stopped, key: KEY, datastorePort: await freePort(), factory: createMysqlDatastore,
      extraConf: '[DEFAULT]\nbackup_segment_max_size = 1048576\n', graceMs: 200,
    });
    try {
      await callC.api('prepare', prepareArgs);
      await conductor.waitFor((m) => m.kwargs['instance_id'] === stopped && status(m) === 'healthy', 120_000);
      const db = adminSql(c);
      await db.query('CREATE DATABASE big');
      await db.query('CREATE TABLE big.blobs (id INT PRIMARY KEY, b VARBINARY(1024)) ENGINE=InnoDB');
      for (let i = 0; i < 3; i++) await db.query(`INSERT INTO big.blobs SELECT ${i * 50_000} + seq, RANDOM_BYTES(1024) FROM big.seq_1_to_50000`);
      await db.end();
      const id = 'b-stop-' + randomUUID().slice(0, 8);
      const from = conductor.received.length;
      await callC.api('create_backup', {
        backup_info: { id, instance_id: stopped, location: null, type: 'InnoBackupEx', checksum: null, datastore: 'mariadb', datastore_version: '10.11' },
      }, { context, notification: true });
      const client = createSwiftClient({ storageUrl: swift.storageUrl, token: swift.token });
      const ours = async () => (await client.list('database_backups').catch(() => [] as string[])).filter((n) => n.startsWith(id));
      const deadline = Date.now() + 60_000;
      while ((await ours()).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect((await ours()).length).toBeGreaterThanOrEqual(2);
      const tool = () => execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes('mariabackup') && l.includes(c.stateDir));
      expect(tool().length).toBe(1);
      // A running backup is noted in the state dir (what a killed agent's next start reads).
      const journal = join(c.stateDir, 'backups-running');
      expect(readdirSync(journal).map((f) => JSON.parse(readFileSync(join(journal, f), 'utf8')).id)).toEqual([id]);
      await c.agent.stop();
      const done = await conductor.waitFor((m) => m.method === 'update_backup' && m.kwargs['backup_id'] === id && m.kwargs['state'] !== 'BUILDING', 10_000, from);
      expect(done.kwargs).toMatchObject({ state: 'FAILED', success: false });
      expect(await ours()).toEqual([]);
      expect(tool()).toEqual([]);
      expect(readdirSync(journal)).toEqual([]);

      // Had the agent been killed instead, its note would still be there: the next start reports the backup FAILED.
      const killed = 'b-killed-' + randomUUID().slice(0, 8);
      writeFileSync(join(journal, `${Buffer.from(killed).toString('hex')}.json`), JSON.stringify({ id: killed, container: 'database_backups', started: new Date().toISOString() }));
      const at = conductor.received.length;
      const again = await startTestAgent({
        conductorQueue, transportUrl: rabbit.url, guestId: stopped, key: KEY, datastorePort: await freePort(), factory: createMysqlDatastore, root: c.root, graceMs: 200,
      });
      try {
        const failed = await conductor.waitFor((m) => m.method === 'update_backup' && m.kwargs['backup_id'] === killed, 30_000, at);
        expect(failed.kwargs).toMatchObject({ state: 'FAILED', success: false });
        expect(readdirSync(journal)).toEqual([]);
        // No credentials of its own here (the user's token left with the request): it says what may be left.
        expect(again.logText()).toContain('objects of the interrupted backup may remain in Swift');
      } finally {
        await again.agent.stop();
      }
    } finally {
      await c.agent.stop();
    }
  });
});
