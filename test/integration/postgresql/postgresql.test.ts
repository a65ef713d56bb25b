// A PostgreSQL 15 instance driven by Trove's own client: prepare, databases
// (unicode and quoted names, dropped while a client is connected), users and
// access enforced by a real client over TCP, root, paging, and a backup to
// Swift restored into a new agent-started server.
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createPostgresDatastore } from '../../../datastores/postgresql/index.ts';
import { openedForPostgres, startTestAgent, type TestAgent } from '../harness/agent.ts';
import { freePort } from '../harness/ports.ts';
import { PythonCaller, PythonConductor, type PeerResult, resultOf as ok, serviceStatus as status } from '../harness/python-peer.ts';

const rabbit = inject('rabbit');
const conductorQueue = `trove-conductor-${randomUUID()}`;
const swift = inject('swift');
const KEY = 'pg-key-' + randomUUID();
const source = randomUUID();
const target = randomUUID();
const context = { auth_token: swift.token, service_catalog: [{ type: 'object-store', endpoints: [{ publicURL: swift.storageUrl }] }] };
let a: TestAgent;
let b: TestAgent;
let portA: number;
let portB: number;
let callA: PythonCaller;
let callB: PythonCaller;
let conductor: PythonConductor;
const names = (r: PeerResult) => ((ok(r) as [Array<{ _name: string }>, string | null])[0]).map((x) => x._name);
const SUM = "SELECT count(*)::int AS n, md5(string_agg(v, '' ORDER BY id)) AS h FROM items";
const tcp = (port: number, user: string, password: string, database = 'postgres') => new pg.Client({ host: '127.0.0.1', port, user, password, database });
/** A local login with a wrong password: refused once Trove's rules replaced the restore's local trust. */
const refusedWithoutPassword = async (ta: TestAgent, port: number) => {
  const c = new pg.Client({ host: `${ta.stateDir}/postgresql/run`, port, user: 'os_admin', password: 'not-the-password', database: 'postgres' });
  await expect(c.connect()).rejects.toThrow(/password authentication failed/);
  await c.end().catch(() => {});
};
const admin = (ta: TestAgent, port: number, database = 'postgres') =>
  new pg.Client({ host: `${ta.stateDir}/postgresql/run`, port, user: 'os_admin', password: readFileSync(`${ta.stateDir}/postgresql/os_admin.pass`, 'utf8').trim(), database });

beforeAll(async () => {
  [callA, callB, conductor] = await Promise.all([
    PythonCaller.start({ url: rabbit.url, guestId: source, key: KEY }),
    PythonCaller.start({ url: rabbit.url, guestId: target, key: KEY }),
    PythonConductor.start({ url: rabbit.url, keys: { [source]: KEY, [target]: KEY }, queue: conductorQueue }),
  ]);
  portA = await freePort();
  a = openedForPostgres(await startTestAgent({ conductorQueue, transportUrl: rabbit.url, guestId: source, key: KEY, datastorePort: portA, factory: createPostgresDatastore, manager: 'postgresql', reportInterval: 1 }));
  ok(await callA.api('prepare', {
    memory_mb: 512, packages: '', ds_version: '15', config_contents: "max_connections = 50\nshared_buffers = '32MB'\n",
    databases: [{ _name: 'app' }], users: [{ _name: 'alice', _password: "p'ss wörd", _databases: [{ _name: 'app' }] }],
  }));
  await conductor.waitHealthy(source, 120_000, () => a.logTail());
}, 180_000);

afterAll(async () => {
  await a?.agent.stop();
  await b?.agent.stop();
  await Promise.all([callA?.close(), callB?.close(), conductor?.close()]);
});

describe('postgresql', () => {
  it('prepare: users log in over TCP with their password; os_admin only locally; config applied', async () => {
    const alice = tcp(portA, 'alice', "p'ss wörd", 'app');
    await alice.connect();
    expect((await alice.query('SHOW max_connections')).rows[0].max_connections).toBe('50');
    await alice.end();
    const pw = readFileSync(`${a.stateDir}/postgresql/os_admin.pass`, 'utf8').trim();
    await expect((async () => { const c = tcp(portA, 'os_admin', pw); await c.connect(); await c.end(); })()).rejects.toThrow(/rejects|no pg_hba/);
    expect(names(await callA.api('list_databases'))).toEqual(['app']);
  });

  it('databases: quoted and unicode names, pagination, dropped while a client is connected', async () => {
    ok(await callA.api('create_database', { databases: [{ _name: 'wé"ird' }, { _name: 'b2' }, { _name: "c'3" }] }));
    for (let i = 0; i < 50 && names(await callA.api('list_databases')).length < 4; i++) await new Promise((r) => setTimeout(r, 100));
    expect(names(await callA.api('list_databases'))).toEqual(['app', 'b2', "c'3", 'wé"ird']);
    const [p1, marker] = ok(await callA.api('list_databases', { limit: 2 })) as [unknown[], string];
    expect(p1).toHaveLength(2);
    expect(marker).toBe('b2');
    const held = admin(a, portA, 'b2');
    await held.connect();
    held.on('error', () => {});
    ok(await callA.api('delete_database', { database: { _name: 'b2' } }));
    for (let i = 0; i < 50 && names(await callA.api('list_databases')).includes('b2'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(names(await callA.api('list_databases'))).not.toContain('b2');
    await held.end().catch(() => {});
    const bad = await callA.raw('delete_database', { database: { _name: 'postgres' } }, { timeout: 10 });
    expect(!bad.ok && bad.error.remote_class).toBe('BadRequest');
  });

  it('users: access enforced, attributes, passwords, paging through many users', async () => {
    ok(await callA.api('create_user', { users: [{ _name: 'bob', _password: 'b0b', _databases: [] }] }));
    await new Promise((r) => setTimeout(r, 500));
    const bob = tcp(portA, 'bob', 'b0b', 'app');
    await bob.connect();
    await bob.query('SELECT 1'); // CONNECT is granted to PUBLIC by default
    await expect(bob.query('CREATE TABLE t (x int)')).rejects.toThrow(/permission denied/);
    await bob.end();
    ok(await callA.api('grant_access', { username: 'bob', hostname: '%', databases: ['app'] }));
    expect((ok(await callA.api('list_access', { username: 'bob', hostname: '%' })) as Array<{ _name: string }>).map((d) => d._name)).toEqual(['app']);
    ok(await callA.api('update_attributes', { username: 'bob', hostname: '%', user_attrs: { name: 'robert', password: 'r0b' } }));
    await new Promise((r) => setTimeout(r, 500));
    const robert = tcp(portA, 'robert', 'r0b', 'app');
    await robert.connect();
    await robert.end();
    const c = admin(a, portA);
    await c.connect();
    await c.query("DO $$ BEGIN FOR i IN 1..1000 LOOP EXECUTE format('CREATE ROLE %I LOGIN', 'u' || lpad(i::text, 4, '0')); END LOOP; END $$");
    await c.end();
    let marker: string | null = null;
    const seen: string[] = [];
    for (let i = 0; i < 30; i++) {
      const [items, next] = ok(await callA.api('list_users', { limit: 100, marker })) as [Array<{ _name: string }>, string | null];
      seen.push(...items.map((u) => u._name));
      if (!next) break;
      marker = next;
    }
    // alice, robert and 1,000 more, each once and in order; os_admin and postgres hidden.
    expect(seen).toHaveLength(1002);
    expect(new Set(seen).size).toBe(1002);
    expect([...seen].sort()).toEqual(seen);
    expect(seen).not.toContain('os_admin');
  });

  it('root is the postgres role', async () => {
    expect(ok(await callA.api('is_root_enabled'))).toBe(false);
    ok(await callA.api('enable_root_with_password', { root_password: 'R00t' }));
    const r = tcp(portA, 'postgres', 'R00t');
    await r.connect();
    await r.end();
    ok(await callA.api('disable_root'));
    expect(ok(await callA.api('is_root_enabled'))).toBe(false);
  });

  it('overrides: reloadable ones live, the others reported as restart required until a restart', async () => {
    ok(await callA.api('update_overrides', { overrides: { work_mem: '8MB', shared_buffers: '48MB' } }));
    ok(await callA.api('apply_overrides', { overrides: { work_mem: '8MB', shared_buffers: '48MB' } }));
    const show = async (name: string) => {
      const c = tcp(portA, 'alice', "p'ss wörd", 'app');
      await c.connect();
      try {
        return (await c.query(`SHOW ${name}`)).rows[0][name] as string;
      } finally {
        await c.end();
      }
    };
    expect(await show('work_mem')).toBe('8MB');
    expect(await show('shared_buffers')).toBe('32MB');
    let from = conductor.received.length;
    await conductor.waitFor((c) => c.kwargs['instance_id'] === source && status(c) === 'restart required', 15_000, from);
    ok(await callA.api('restart'));
    expect(await show('shared_buffers')).toBe('48MB');
    from = conductor.received.length;
    await conductor.waitFor((c) => c.kwargs['instance_id'] === source && status(c) === 'healthy', 15_000, from);
  });

  it("start_db_with_conf_changes with a parameter the server does not know: the call fails with the server's own words; the good configuration brings it back", async () => {
    const good = "max_connections = 50\nshared_buffers = '32MB'\n";
    ok(await callA.api('stop_db'));
    const r = await callA.api('start_db_with_conf_changes', { config_contents: `${good}no_such_parameter = 1\n`, ds_version: '15' });
    expect(!r.ok && r.error.message).toMatch(/LOG: unrecognized configuration parameter "no_such_parameter" in file .*; FATAL: configuration file .* contains errors \(postgres exited/);
    const from = conductor.received.length;
    ok(await callA.api('start_db_with_conf_changes', { config_contents: good, ds_version: '15' }));
    await conductor.waitFor((c) => c.kwargs['instance_id'] === source && status(c) === 'healthy', 30_000, from);
    expect(names(await callA.api('list_databases'))).toContain('app');
  });

  it('guest logs: general enabled (restart required), published to Swift in increments, without the agent\'s passwords, then discarded', async () => {
    const act = (log_name: string, o: { enable?: boolean; disable?: boolean; publish?: boolean; discard?: boolean }) =>
      callA.raw('guest_log_action', { log_name, enable: false, disable: false, publish: false, discard: false, ...o }, { timeout: 60, ...({} as object) });
    const api = (log_name: string, o: { enable?: boolean; disable?: boolean; publish?: boolean; discard?: boolean }) =>
      callA.api('guest_log_action', { log_name, enable: false, disable: false, publish: false, discard: false, ...o }, { context });
    const prefix = `${source}/postgresql-general/`;
    const listed = ok(await callA.api('guest_log_list', {}, { context })) as Array<Record<string, unknown>>;
    expect(listed).toEqual([{ name: 'general', type: 'USER', status: 'Disabled', published: 0, pending: 0, container: 'None', prefix: 'None', metafile: `${source}/postgresql-general_metafile` }]);
    expect(ok(await api('general', { enable: true }))).toMatchObject({ status: 'Restart Required' });
    await conductor.waitFor((c) => c.kwargs['instance_id'] === source && status(c) === 'restart required', 15_000, conductor.received.length);
    ok(await callA.api('restart'));
    const alice = tcp(portA, 'alice', "p'ss wörd", 'app');
    await alice.connect();
    await alice.query("SELECT 'hello-guest-log' AS marker");
    await alice.end();
    ok(await callA.api('change_passwords', { users: [{ _name: 'robert', _host: '%', _password: 'S3cret-pw-never-logged' }] }));
    const first = ok(await api('general', { publish: true })) as Record<string, unknown>;
    expect(first).toMatchObject({ name: 'general', status: 'Published', pending: 0, container: 'database_logs', prefix });
    const objects = async () => (await (await fetch(`${swift.storageUrl}/database_logs?format=json&prefix=${encodeURIComponent(prefix)}`, { headers: { 'X-Auth-Token': swift.token } })).json()) as Array<{ name: string; bytes: number }>;
    const text = async (name: string) => (await fetch(`${swift.storageUrl}/database_logs/${name}`, { headers: { 'X-Auth-Token': swift.token } })).text();
    const one = await objects();
    expect(one.length).toBeGreaterThanOrEqual(1);
    const published = (await Promise.all(one.map((o) => text(o.name)))).join('');
    expect(published).toContain('hello-guest-log');
    expect(published).not.toContain('S3cret-pw');
    expect(one.reduce((n, o) => n + o.bytes, 0)).toBe(first['published']);
    const meta = JSON.parse(await text(`${source}/postgresql-general_metafile`)) as Record<string, unknown>;
    expect(meta).toMatchObject({ log_name: 'general', log_type: 'USER', log_size: first['published'] });
    // Only what is new goes up the second time.
    const again = tcp(portA, 'alice', "p'ss wörd", 'app');
    await again.connect();
    await again.query("SELECT 'second-publish' AS marker");
    await again.end();
    const second = ok(await api('general', { publish: true })) as Record<string, unknown>;
    expect(Number(second['published'])).toBeGreaterThan(Number(first['published']));
    const two = await objects();
    expect(two.length).toBeGreaterThan(one.length);
    expect(await text(two[two.length - 1]!.name)).toContain('second-publish');
    expect(ok(await api('general', { discard: true }))).toMatchObject({ published: 0, container: 'None' });
    expect(await objects()).toEqual([]);
    // The agent's own log is a SYSTEM log; unknown names are refused.
    const sys = await act('guest', { enable: true });
    expect(!sys.ok && sys.error.remote_class).toBe('BadRequest');
    const none = await act('nope', { publish: true });
    expect(!none.ok && none.error.remote_class, JSON.stringify(none)).toBe('NotFound');
  });

  it('backs up to Swift (full, then incremental) and restores the chain into a new server', async () => {
    const c = admin(a, portA, 'app');
    await c.connect();
    await c.query('CREATE TABLE items AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g');
    const before = (await c.query(SUM)).rows[0];
    await c.end();
    const from = conductor.received.length;
    ok(await callA.api('create_backup', { backup_info: { id: 'pgb-' + randomUUID().slice(0, 8), instance_id: source, datastore: 'postgresql', datastore_version: '15' } }, { context }));
    const done = await conductor.waitFor((x) => x.method === 'update_backup' && x.kwargs['state'] !== 'BUILDING', 120_000, from);
    expect(done.kwargs, JSON.stringify(done.kwargs)).toMatchObject({ state: 'COMPLETED', success: true });
    expect(String(done.kwargs['location'])).toMatch(/\.tar\.gz$/);
    // Changes after the full backup travel in the incremental's WAL.
    const c2 = admin(a, portA, 'app');
    await c2.connect();
    await c2.query('CREATE TABLE later AS SELECT g AS id, md5((g * 7)::text) AS v FROM generate_series(1, 5000) g');
    await c2.query('UPDATE items SET v = upper(v) WHERE id % 10 = 0');
    const afterFull = (await c2.query(SUM)).rows[0];
    const later = (await c2.query(SUM.replace('items', 'later'))).rows[0];
    await c2.end();
    expect(afterFull).not.toEqual(before);
    const from2 = conductor.received.length;
    ok(await callA.api('create_backup', {
      backup_info: { id: 'pgi-' + randomUUID().slice(0, 8), instance_id: source, datastore: 'postgresql', datastore_version: '15', parent: { location: done.kwargs['location'], checksum: done.kwargs['checksum'] } },
    }, { context }));
    const inc = await conductor.waitFor((x) => x.method === 'update_backup' && x.kwargs['state'] !== 'BUILDING', 120_000, from2);
    expect(inc.kwargs, JSON.stringify(inc.kwargs)).toMatchObject({ state: 'COMPLETED', success: true });
    const head = await fetch(String(inc.kwargs['location']), { method: 'HEAD', headers: { 'X-Auth-Token': swift.token } });
    expect(head.headers.get('x-object-meta-parent-location')).toBe(done.kwargs['location']);
    expect(head.headers.get('x-object-meta-stop-wal-file')).toMatch(/^[0-9A-F]{24}$/);
    portB = await freePort();
    b = openedForPostgres(await startTestAgent({ conductorQueue, transportUrl: rabbit.url, guestId: target, key: KEY, datastorePort: portB, factory: createPostgresDatastore, manager: 'postgresql' }));
    ok(await callB.api('prepare', {
      memory_mb: 512, packages: '', databases: [], users: [], ds_version: '15', config_contents: 'max_connections = 40\n',
      backup_info: { id: 'restore', location: inc.kwargs['location'], checksum: inc.kwargs['checksum'] },
    }, { context }));
    const end = await conductor.waitFor((x) => x.kwargs['instance_id'] === target && ['healthy', 'failed to spawn'].includes(status(x) ?? ''), 120_000);
    expect(status(end), JSON.stringify(end.kwargs) + '\n' + b.logTail()).toBe('healthy');
    const r = admin(b, portB, 'app');
    await r.connect();
    expect((await r.query(SUM)).rows[0]).toEqual(afterFull);
    expect((await r.query(SUM.replace('items', 'later'))).rows[0]).toEqual(later);
    await r.end();
    const alice = tcp(portB, 'alice', "p'ss wörd", 'app');
    await alice.connect();
    await alice.end();
    await refusedWithoutPassword(b, portB);
  }, 240_000);

  it('an agent restarted on the same guest brings the server back with its data and does not prepare again', async () => {
    await a.agent.stop();
    const from = conductor.received.length;
    a = openedForPostgres(await startTestAgent({ conductorQueue, transportUrl: rabbit.url, guestId: source, key: KEY, datastorePort: portA, factory: createPostgresDatastore, manager: 'postgresql', reportInterval: 1, root: a.root }));
    await conductor.waitFor((c) => c.kwargs['instance_id'] === source && status(c) === 'healthy', 60_000, from);
    const c = admin(a, portA, 'app');
    await c.connect();
    expect((await c.query('SELECT count(*)::int AS n FROM later')).rows[0].n).toBe(5000);
    await c.end();
    const again = await callA.raw('prepare', { memory_mb: 512, packages: '', databases: [], users: [], ds_version: '15', config_contents: '' }, { timeout: 20 });
    expect(again.ok).toBe(false);
    expect(names(await callA.api('list_databases'))).toContain('app');
  }, 120_000);

  it('rebuild on a new guest image over the same data volume: the data back, a new os_admin password, the new configuration', async () => {
    const oldPass = readFileSync(`${a.stateDir}/postgresql/os_admin.pass`, 'utf8');
    await a.agent.stop();
    // A fresh root disk; the data volume (data directory and WAL archive) moves over.
    const fresh = mkdtempSync(join(tmpdir(), 'ga-pg-rebuilt-'));
    mkdirSync(join(fresh, 'state', 'postgresql'), { recursive: true });
    for (const d of ['data', 'wal_archive']) renameSync(`${a.stateDir}/postgresql/${d}`, join(fresh, 'state', 'postgresql', d));
    a = openedForPostgres(await startTestAgent({ conductorQueue, transportUrl: rabbit.url, guestId: source, key: KEY, datastorePort: portA, factory: createPostgresDatastore, manager: 'postgresql', reportInterval: 1, root: fresh }));
    const from = conductor.received.length;
    ok(await callA.api('rebuild', { ds_version: '15', config_contents: 'max_connections = 45\n', config_overrides: { work_mem: '8MB' } }));
    const end = await conductor.waitFor((c) => c.kwargs['instance_id'] === source && ['healthy', 'failed to spawn'].includes(status(c) ?? ''), 120_000, from);
    expect(status(end), a.logTail()).toBe('healthy');
    expect(readFileSync(`${a.stateDir}/postgresql/os_admin.pass`, 'utf8')).not.toBe(oldPass);
    const c = admin(a, portA, 'app');
    await c.connect();
    expect((await c.query('SELECT count(*)::int AS n FROM later')).rows[0].n).toBe(5000);
    expect((await c.query('SHOW max_connections')).rows[0].max_connections).toBe('45');
    expect((await c.query('SHOW work_mem')).rows[0].work_mem).toBe('8MB');
    await c.end();
    // os_admin stays local only after the trust start: over TCP it is refused.
    const t = tcp(portA, 'os_admin', readFileSync(`${a.stateDir}/postgresql/os_admin.pass`, 'utf8').trim());
    await expect(t.connect()).rejects.toThrow();
    await t.end().catch(() => {});
    await refusedWithoutPassword(a, portA);
    expect(names(await callA.api('list_databases'))).toContain('app');
  }, 180_000);

  it('with backup_compression = zstd: a full backup the server compresses itself and an incremental on it restore as a chain into a new server', async () => {
    await a.agent.stop();
    const zstd = '[DEFAULT]\nbackup_compression = zstd\n';
    a = openedForPostgres(await startTestAgent({ conductorQueue, transportUrl: rabbit.url, guestId: source, key: KEY, datastorePort: portA, factory: createPostgresDatastore, manager: 'postgresql', reportInterval: 1, root: a.root, extraConf: zstd, logLevel: 'info' }));
    await conductor.waitFor((c) => c.kwargs['instance_id'] === source && status(c) === 'healthy', 60_000);
    const backup = async (id: string, parent?: { location: unknown; checksum: unknown }) => {
      const from = conductor.received.length;
      ok(await callA.api('create_backup', { backup_info: { id, instance_id: source, datastore: 'postgresql', datastore_version: '15', ...(parent ? { parent } : {}) } }, { context }));
      const done = await conductor.waitFor((x) => x.method === 'update_backup' && x.kwargs['backup_id'] === id && x.kwargs['state'] !== 'BUILDING', 120_000, from);
      expect(done.kwargs, JSON.stringify(done.kwargs) + '\n' + a.logTail()).toMatchObject({ state: 'COMPLETED', success: true });
      expect(String(done.kwargs['location'])).toMatch(new RegExp(`/${id}\\.tar\\.zst$`));
      // A zstd stream (RFC 8878 frame magic), not a tar: the bytes in Swift are compressed.
      const first = await fetch(String(done.kwargs['location']), { headers: { 'X-Auth-Token': swift.token, Range: 'bytes=0-3' } });
      expect(Buffer.from(await first.arrayBuffer()).toString('hex')).toBe('28b52ffd');
      return done.kwargs;
    };
    const full = await backup('pgz-' + randomUUID().slice(0, 8));
    // The full backup was compressed by the server (no zstd program between pg_basebackup and the agent).
    const started = a.logText().split('\n').filter((l) => l.includes('"backup started"'));
    expect(started.at(-1)).toMatch(/pg_basebackup .*--compress=server-zstd:level=3,workers=\d+/);
    const c = admin(a, portA, 'app');
    await c.connect();
    await c.query('CREATE TABLE afterzstd AS SELECT g AS id, md5((g * 3)::text) AS v FROM generate_series(1, 3000) g');
    const items = (await c.query(SUM)).rows[0];
    const after = (await c.query(SUM.replace('items', 'afterzstd'))).rows[0];
    await c.end();
    const inc = await backup('pgzi-' + randomUUID().slice(0, 8), { location: full['location'], checksum: full['checksum'] });
    await b?.agent.stop();
    portB = await freePort();
    b = openedForPostgres(await startTestAgent({ conductorQueue, transportUrl: rabbit.url, guestId: target, key: KEY, datastorePort: portB, factory: createPostgresDatastore, manager: 'postgresql', extraConf: zstd }));
    const from = conductor.received.length;
    ok(await callB.api('prepare', {
      memory_mb: 512, packages: '', databases: [], users: [], ds_version: '15', config_contents: 'max_connections = 40\n',
      backup_info: { id: 'restore-zstd', location: inc['location'], checksum: inc['checksum'] },
    }, { context }));
    const end = await conductor.waitFor((x) => x.kwargs['instance_id'] === target && ['healthy', 'failed to spawn'].includes(status(x) ?? ''), 120_000, from);
    expect(status(end), JSON.stringify(end.kwargs) + '\n' + b.logTail()).toBe('healthy');
    const r = admin(b, portB, 'app');
    await r.connect();
    expect((await r.query(SUM)).rows[0]).toEqual(items);
    expect((await r.query(SUM.replace('items', 'afterzstd'))).rows[0]).toEqual(after);
    expect((await r.query('SELECT count(*)::int AS n FROM later')).rows[0].n).toBe(5000);
    await r.end();
  }, 240_000);
});
