// A MySQL or MariaDB instance's life driven by Trove's own guest API client:
// prepare with Trove's arguments, then databases, users, access, root,
// configuration, restarts, upgrade and rebuild, against a real server the agent
// starts and supervises. Run for each server by lifecycle.test.ts (MariaDB) and
// lifecycle-mysql.test.ts (MySQL).
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger } from '../../../src/log.ts';
import { createMysqlDatastore } from '../../../datastores/mysql/index.ts';
import { startTestAgent, type TestAgent } from '../harness/agent.ts';
import { freePort } from '../harness/ports.ts';
import { PythonCaller, PythonConductor, type PeerResult, resultOf as ok } from '../harness/python-peer.ts';
import { connectSql } from '../../../datastores/mysql/sql.ts';

/** The server a run of the suite drives. */
export interface ServerUnderTest {
  flavor: 'mariadb' | 'mysql';
  /** Its program, as the agent runs it. */
  binary: string;
  /** Trove's datastore version name for it. */
  dsVersion: string;
  /** What the agent's configuration says about it. */
  extraConf: string;
}

export function defineLifecycleSuite(server: ServerUnderTest): void {
  const rabbit = inject('rabbit');
  const swift = inject('swift');
  const conductorQueue = `trove-conductor-${randomUUID()}`;
  const KEY = 'mysql-key-' + randomUUID();
  const guestId = randomUUID();
  const PASSWORD = "p@ss'w\"ord\\ünï;`x";
  const SAFE_PASSWORD = 'Sup3r-secret_pw';
  let ta: TestAgent;
  let caller: PythonCaller;
  let conductor: PythonConductor;
  let port: number;
  const logLines: string[] = [];

  const remote = (r: PeerResult) => {
    expect(r.ok, JSON.stringify(r)).toBe(false);
    return (r as { error: { remote_class: string; message: string } }).error;
  };
  /** Casts return before the work is done: poll a call until it shows the effect. */
  async function eventually<T>(fn: () => Promise<T>, pred: (t: T) => boolean, ms = 20_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (pred(v) || Date.now() > deadline) return v;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const names = (r: PeerResult) => ((ok(r) as [Array<{ _name: string }>, string | null])[0]).map((x) => x._name);

  beforeAll(async () => {
    port = await freePort();
    const sink = new Writable({ write(c, _e, cb) { logLines.push(String(c)); cb(); } });
    [caller, conductor] = await Promise.all([
      PythonCaller.start({ url: rabbit.url, guestId, key: KEY }),
      PythonConductor.start({ url: rabbit.url, keys: { [guestId]: KEY }, queue: conductorQueue }),
    ]);
    ta = await startTestAgent({ conductorQueue, transportUrl: rabbit.url, guestId, key: KEY, datastorePort: port, reportInterval: 4, factory: createMysqlDatastore, extraConf: server.extraConf, datastoreVersion: server.dsVersion, log: createLogger({ destination: sink, level: 'debug' }) });
    ok(await caller.api('prepare', {
      memory_mb: 512, packages: '', databases: [{ _name: 'app', _character_set: 'utf8mb4', _collate: 'utf8mb4_unicode_ci' }],
      users: [{ _name: 'appuser', _host: '%', _password: SAFE_PASSWORD, _databases: [{ _name: 'app' }] }],
      device_path: null, mount_point: '/var/lib/mysql', config_contents: '[mysqld]\nmax_connections = 77\n', root_password: null,
      overrides: { max_allowed_packet: 33554432 }, ds_version: server.dsVersion,
    }, { notification: true }));
    await conductor.waitFor((c) => c.method === 'heartbeat' && (c.kwargs['payload'] as { service_status: string }).service_status === 'healthy', 120_000);
  }, 180_000);

  afterAll(async () => {
    await ta?.agent.stop();
    await Promise.all([caller?.close(), conductor?.close()]);
  });

  describe('prepare', () => {
    it('ran once: secured server with os_admin in a 0600 file, databases and users from prepare', async () => {
      expect(statSync(`${ta.stateDir}/mysql/os_admin.cnf`).mode & 0o777).toBe(0o600);
      expect(names(await caller.api('list_databases'))).toEqual(['app']);
      const users = ok(await caller.api('list_users')) as [Array<Record<string, unknown>>, string | null];
      expect(users).toEqual([[{ _name: 'appuser', _password: null, _host: '%', _databases: [{ _name: 'app', _collate: null, _character_set: null }], _is_root: false }], null]);
      expect(ok(await caller.api('is_root_enabled'))).toBe(false);
      const db = connectSql({ socketPath: `${ta.stateDir}/mysql/run/mysqld.sock`, user: 'os_admin', password: /password = (.*)/.exec(readFileSync(`${ta.stateDir}/mysql/os_admin.cnf`, 'utf8'))![1]! });
      const vars = await db.query<{ Variable_name: string; Value: string }>("SHOW GLOBAL VARIABLES WHERE Variable_name IN ('max_connections', 'max_allowed_packet', 'port')");
      expect(Object.fromEntries(vars.map((v) => [v.Variable_name, v.Value]))).toEqual({ max_connections: '77', max_allowed_packet: '33554432', port: String(port) });
      expect(await db.query("SELECT User FROM mysql.user WHERE User = '' OR (User = 'root' AND Host != 'localhost')")).toEqual([]);
      expect(await db.query("SHOW DATABASES LIKE 'test'")).toEqual([]);
      // MySQL makes root@localhost without a password: the agent locks it (MariaDB's is socket-only from the start).
      if (server.flavor === 'mysql') expect(await db.query("SELECT account_locked FROM mysql.user WHERE User = 'root' AND Host = 'localhost'")).toEqual([{ account_locked: 'Y' }]);
      await db.end();
    });
  });

  describe('databases and users', () => {
    it('creates, pages and deletes databases with Trove pagination', async () => {
      ok(await caller.api('create_database', { databases: ['d1', 'd2', 'd3', 'd4'].map((n) => ({ _name: n })) }));
      await eventually(() => caller.api('list_databases'), (r) => names(r).length === 5);
      const [page1, marker] = ok(await caller.api('list_databases', { limit: 2 })) as [Array<{ _name: string }>, string];
      expect(page1.map((d) => d._name)).toEqual(['app', 'd1']);
      expect(marker).toBe('d1');
      expect(names(await caller.api('list_databases', { limit: 2, marker }))).toEqual(['d2', 'd3']);
      expect(names(await caller.api('list_databases', { limit: 2, marker, include_marker: true }))).toEqual(['d1', 'd2']);
      expect((ok(await caller.api('list_databases', { limit: 10, marker: 'd3' })) as unknown[])[1]).toBeNull();
      ok(await caller.api('delete_database', { database: { _name: 'd4' } }));
      await eventually(() => caller.api('list_databases'), (r) => !names(r).includes('d4'));
      expect(names(await caller.api('list_databases'))).toEqual(['app', 'd1', 'd2', 'd3']);
    });

    it('refuses bad names without touching data, and reserved names', async () => {
      for (const bad of ['a;DROP DATABASE app', 'x`y', "q'x", 'a'.repeat(65), 'ünï', '../etc']) {
        const r = await caller.raw('create_database', { databases: [{ _name: bad }] }, { timeout: 10 });
        expect(remote(r).remote_class).toBe('ValueError');
      }
      expect(remote(await caller.raw('delete_database', { database: { _name: 'mysql' } }, { timeout: 10 })).remote_class).toBe('BadRequest');
      expect(remote(await caller.raw('create_user', { users: [{ _name: 'os_admin', _password: 'x1' }] }, { timeout: 10 })).remote_class).toBe('BadRequest');
      expect(remote(await caller.api('get_user', { username: "bob'--", hostname: '%' })).remote_class).toBe('ValueError');
      expect(names(await caller.api('list_databases'))).toEqual(['app', 'd1', 'd2', 'd3']);
    });

    it('creates users with odd passwords through parameters; access, attributes and passwords', async () => {
      // Trove's rules refuse quotes and backslashes in passwords; unicode and symbols pass.
      expect(remote(await caller.raw('create_user', { users: [{ _name: 'u1', _host: '%', _password: PASSWORD }] }, { timeout: 10 })).remote_class).toBe('ValueError');
      ok(await caller.api('create_user', { users: [{ _name: 'u1', _host: '%', _password: 'päss wörd#1!', _databases: [{ _name: 'd1' }] }] }));
      await eventually(() => caller.api('get_user', { username: 'u1', hostname: '%' }), (r) => r.ok && r.result !== null);
      ok(await caller.api('grant_access', { username: 'u1', hostname: '%', databases: ['d2'] }));
      expect((ok(await caller.api('list_access', { username: 'u1', hostname: '%' })) as Array<{ _name: string }>).map((d) => d._name)).toEqual(['d1', 'd2']);
      ok(await caller.api('revoke_access', { username: 'u1', hostname: '%', database: 'd1' }));
      expect((ok(await caller.api('list_access', { username: 'u1', hostname: '%' })) as Array<{ _name: string }>).map((d) => d._name)).toEqual(['d2']);
      ok(await caller.api('update_attributes', { username: 'u1', hostname: '%', user_attrs: { name: 'u2', host: '10.0.%.%', password: 'N3w-pass' } }));
      await eventually(() => caller.api('get_user', { username: 'u2', hostname: '10.0.%.%' }), (r) => r.ok && r.result !== null);
      expect(ok(await caller.api('get_user', { username: 'u1', hostname: '%' }))).toBeNull();
      ok(await caller.api('change_passwords', { users: [{ _name: 'u2', _host: '10.0.%.%', _password: 'Ch4nged' }] }));
      const [users, marker] = ok(await caller.api('list_users', { limit: 1 })) as [Array<{ _name: string }>, string];
      expect(users.map((u) => u._name)).toEqual(['appuser']);
      expect(marker).toBe('appuser@%');
      ok(await caller.api('delete_user', { user: { _name: 'u2', _host: '10.0.%.%' } }));
      await eventually(() => caller.api('list_users'), (r) => ((ok(r) as unknown[][])[0]!).length === 1);
      expect(remote(await caller.api('grant_access', { username: 'ghost', hostname: '%', databases: ['d1'] })).remote_class).toBe('UserNotFound');
    });

    it('create_user of several users: made together, or stopped at one that exists as Trove stops; list_users pages carry their databases', async () => {
      const many = (ns: string[], dbs: string[]) => ns.map((n) => ({ _name: n, _host: '%', _password: `Pw-${n}`, _databases: dbs.map((d) => ({ _name: d })) }));
      const byName = (r: PeerResult) => Object.fromEntries(((ok(r) as [Array<{ _name: string; _databases: Array<{ _name: string }> }>])[0]).map((u) => [u._name, u._databases.map((d) => d._name)]));
      ok(await caller.api('create_user', { users: many(['n01', 'n02'], ['d1', 'd2']) }));
      await eventually(() => caller.api('list_users'), (r) => names(r).includes('n02'));
      ok(await caller.api('create_user', { users: many(['m03'], []) }));
      await eventually(() => caller.api('list_users'), (r) => names(r).includes('m03'));
      // m03 exists: Trove's loop makes m01 and m02 with their grants, fails on m03 and never reaches m04, m05.
      ok(await caller.api('create_user', { users: many(['m01', 'm02', 'm03', 'm04', 'm05'], ['d2']) }));
      await eventually(() => caller.api('list_users'), (r) => names(r).includes('m02'));
      await new Promise((r) => setTimeout(r, 1000));
      expect(byName(await caller.api('list_users'))).toEqual({ appuser: ['app'], m01: ['d2'], m02: ['d2'], m03: [], n01: ['d1', 'd2'], n02: ['d1', 'd2'] });
      const [page1, marker] = ok(await caller.api('list_users', { limit: 4 })) as [Array<{ _name: string }>, string];
      expect([page1.map((u) => u._name), marker]).toEqual([['appuser', 'm01', 'm02', 'm03'], 'm03@%']);
      expect(byName(await caller.api('list_users', { limit: 4, marker, include_marker: false }))).toEqual({ n01: ['d1', 'd2'], n02: ['d1', 'd2'] });
      expect((ok(await caller.api('list_users', { limit: 4, marker })) as unknown[])[1]).toBeNull();
      for (const n of ['m01', 'm02', 'm03', 'n01', 'n02']) ok(await caller.api('delete_user', { user: { _name: n, _host: '%' } }));
      await eventually(() => caller.api('list_users'), (r) => names(r).length === 1);
      expect(names(await caller.api('list_users'))).toEqual(['appuser']);
    });

    it('never logs a password', () => {
      const text = logLines.join('');
      for (const secret of ['päss wörd#1!', 'N3w-pass', 'Ch4nged', SAFE_PASSWORD, KEY]) expect(text).not.toContain(secret);
    });
  });

  describe('root, configuration and restarts', () => {
    it('enables root with a password, reports it to conductor, and disables it', async () => {
      const root = ok(await caller.api('enable_root_with_password', { root_password: 'R00t-pw' })) as Record<string, unknown>;
      expect(root).toMatchObject({ _name: 'root', _host: '%', _password: 'R00t-pw', _is_root: true });
      expect(ok(await caller.api('is_root_enabled'))).toBe(true);
      await conductor.waitFor((c) => c.method === 'report_root' && c.kwargs['instance_id'] === guestId);
      const gen = ok(await caller.api('enable_root')) as { _password: string };
      expect(gen._password.length).toBeGreaterThanOrEqual(16);
      ok(await caller.api('disable_root'));
      expect(ok(await caller.api('is_root_enabled'))).toBe(false);
    });

    it('applies overrides live and keeps them across a restart', async () => {
      ok(await caller.api('update_overrides', { overrides: { max_connections: 123 } }));
      ok(await caller.api('apply_overrides', { overrides: { max_connections: 123 } }));
      ok(await caller.api('restart'));
      const db = connectSql({ socketPath: `${ta.stateDir}/mysql/run/mysqld.sock`, user: 'os_admin', password: /password = (.*)/.exec(readFileSync(`${ta.stateDir}/mysql/os_admin.cnf`, 'utf8'))![1]! });
      const [v] = await db.query<{ Value: string }>("SHOW GLOBAL VARIABLES LIKE 'max_connections'");
      await db.end();
      expect(v!.Value).toBe('123');
      expect(names(await caller.api('list_databases'))).toEqual(['app', 'd1', 'd2', 'd3']);
    });

    it('guest logs: general and slow_query switched on live, published to Swift without the agent\'s passwords', async () => {
      const context = { auth_token: swift.token, service_catalog: [{ type: 'object-store', endpoints: [{ publicURL: swift.storageUrl }] }] };
      const act = (log_name: string, o: Record<string, boolean>) => caller.api('guest_log_action', { log_name, enable: false, disable: false, publish: false, discard: false, ...o }, { context });
      expect((ok(await caller.api('guest_log_list', {}, { context })) as Array<{ name: string; status: string }>).map((l) => [l.name, l.status])).toEqual([['general', 'Disabled'], ['slow_query', 'Disabled']]);
      // the server writes the file's header at once: there is something to publish.
      expect(ok(await act('general', { enable: true }))).toMatchObject({ name: 'general', type: 'USER', status: 'Ready' });
      const user = connectSql({ socketPath: `${ta.stateDir}/mysql/run/mysqld.sock`, user: 'appuser', password: SAFE_PASSWORD });
      await user.query("SELECT 'mysql-guest-log-marker'");
      await user.end();
      ok(await caller.api('create_user', { users: [{ _name: 'logged', _host: '%', _password: 'Never-In-The-Log-1', _databases: [] }] }));
      await eventually(() => caller.api('list_users'), (r) => names(r).includes('logged'));
      const published = ok(await act('general', { publish: true })) as { published: number; prefix: string; status: string };
      expect(published).toMatchObject({ container: 'database_logs', prefix: `${guestId}/mysql-general/` });
      // 'Partial' when the server wrote more lines (a heartbeat's connect) between the upload and the answer, as Trove computes it.
      expect(['Published', 'Partial']).toContain(published.status);
      const list = (await (await fetch(`${swift.storageUrl}/database_logs?format=json&prefix=${encodeURIComponent(published.prefix)}`, { headers: { 'X-Auth-Token': swift.token } })).json()) as Array<{ name: string }>;
      const text = (await Promise.all(list.map(async (o) => (await fetch(`${swift.storageUrl}/database_logs/${o.name}`, { headers: { 'X-Auth-Token': swift.token } })).text()))).join('');
      expect(text).toContain('mysql-guest-log-marker');
      expect(text).not.toContain('Never-In-The-Log');
      expect(ok(await act('general', { disable: true }))).toMatchObject({ status: 'Disabled' });
      const db = connectSql({ socketPath: `${ta.stateDir}/mysql/run/mysqld.sock`, user: 'os_admin', password: /password = (.*)/.exec(readFileSync(`${ta.stateDir}/mysql/os_admin.cnf`, 'utf8'))![1]! });
      expect((await db.query<{ v: number }>('SELECT @@GLOBAL.general_log AS v'))[0]!.v).toBe(0);
      expect(ok(await act('slow_query', { enable: true }))).toMatchObject({ status: 'Ready' });
      expect((await db.query<{ v: number; t: number }>('SELECT @@GLOBAL.slow_query_log AS v, @@GLOBAL.long_query_time AS t'))[0]).toEqual({ v: 1, t: 1 });
      await db.end();
      ok(await act('general', { discard: true }));
    });

    it("publishes the server's error log ('error', SYSTEM, admin only by default), which cannot be switched off", async () => {
      const context = { auth_token: swift.token, service_catalog: [{ type: 'object-store', endpoints: [{ publicURL: swift.storageUrl }] }] };
      const adminCtx = { ...context, is_admin: true };
      const act = (o: Record<string, boolean>, ctx: Record<string, unknown> = adminCtx) => caller.api('guest_log_action', { log_name: 'error', enable: false, disable: false, publish: false, discard: false, ...o }, { context: ctx });
      const listed = ok(await caller.api('guest_log_list', {}, { context: adminCtx })) as Array<Record<string, unknown>>;
      expect(listed.map((l) => [l['name'], l['type']])).toEqual([['general', 'USER'], ['slow_query', 'USER'], ['error', 'SYS'], ['guest', 'SYS']]);
      const userView = await act({ publish: true }, context);
      expect(!userView.ok && userView.error.message).toMatch(/must be admin/);
      const refused = await act({ disable: true });
      expect(!refused.ok && refused.error.message).toMatch(/SYSTEM log/);
      const published = ok(await act({ publish: true })) as { prefix: string; type: string; status: string };
      expect(published).toMatchObject({ type: 'SYS', prefix: `${guestId}/mysql-error/` });
      const list = (await (await fetch(`${swift.storageUrl}/database_logs?format=json&prefix=${encodeURIComponent(published.prefix)}`, { headers: { 'X-Auth-Token': swift.token } })).json()) as Array<{ name: string }>;
      const text = (await Promise.all(list.map(async (o) => (await fetch(`${swift.storageUrl}/database_logs/${o.name}`, { headers: { 'X-Auth-Token': swift.token } })).text()))).join('');
      expect(text).toContain('ready for connections');
      expect(text).not.toContain('Never-In-The-Log');
      ok(await act({ discard: true }));
    });

    it('reports shutdown after stop_db and healthy after start_db_with_conf_changes', async () => {
      const from = conductor.received.length;
      ok(await caller.api('stop_db'));
      await conductor.waitFor((c) => c.method === 'heartbeat' && (c.kwargs['payload'] as { service_status: string }).service_status === 'shutdown', 30_000, from);
      ok(await caller.api('start_db_with_conf_changes', { config_contents: '[mysqld]\nmax_connections = 88\n', ds_version: server.dsVersion }));
      await conductor.waitFor((c) => c.method === 'heartbeat' && (c.kwargs['payload'] as { service_status: string }).service_status === 'healthy', 30_000, from);
      expect(names(await caller.api('list_databases'))).toEqual(['app', 'd1', 'd2', 'd3']);
    });
  });

  describe('a configuration the server refuses', () => {
    it("start_db_with_conf_changes with an option the server does not know: the call fails with the server's own words; the good configuration brings it back", async () => {
      ok(await caller.api('stop_db'));
      const r = await caller.api('start_db_with_conf_changes', { config_contents: '[mysqld]\nmax_connections = 88\nno_such_option = 1\n', ds_version: server.dsVersion });
      expect(remote(r).message).toMatch(/unknown variable 'no_such_option=1'.* \(the database server exited; see /);
      const from = conductor.received.length;
      ok(await caller.api('start_db_with_conf_changes', { config_contents: '[mysqld]\nmax_connections = 88\n', ds_version: server.dsVersion }));
      await conductor.waitFor((c) => c.method === 'heartbeat' && (c.kwargs['payload'] as { service_status: string }).service_status === 'healthy', 30_000, from);
      expect(names(await caller.api('list_databases'))).toEqual(['app', 'd1', 'd2', 'd3']);
    });
  });

  describe('upgrade', () => {
    const heartbeat = (c: { method: string; kwargs: Record<string, unknown> }) => (c.method === 'heartbeat' ? (c.kwargs['payload'] as { service_status: string }).service_status : null);
    const serverPid = async () => {
      const db = connectSql({ socketPath: `${ta.stateDir}/mysql/run/mysqld.sock`, user: 'os_admin', password: /password = (.*)/.exec(readFileSync(`${ta.stateDir}/mysql/os_admin.cnf`, 'utf8'))![1]! });
      try {
        const [r] = await db.query<{ f: string }>('SELECT @@GLOBAL.pid_file AS f');
        return readFileSync(r!.f, 'utf8').trim();
      } finally {
        await db.end();
      }
    };
    const installed = /Ver\s+(\d+\.\d+\.\d+)/.exec(execFileSync(server.binary, ['--version'], { encoding: 'utf8' }))![1]!;

    it("Trove 18's flow: pre_upgrade leaves the server up; upgrade to the version it runs changes nothing", async () => {
      const pid = await serverPid();
      const info = ok(await caller.api('pre_upgrade')) as Record<string, string>;
      expect(info['save_dir']).toBeTruthy();
      expect(names(await caller.api('list_databases'))).toEqual(['app', 'd1', 'd2', 'd3']);
      const from = conductor.received.length;
      ok(await caller.api('upgrade', { upgrade_info: { ...info, datastore_version: server.dsVersion } }));
      await conductor.waitFor((c) => heartbeat(c) === 'healthy', 30_000, from);
      expect(conductor.received.slice(from).map(heartbeat).filter(Boolean)).not.toContain('upgrading');
      expect(await serverPid()).toBe(pid);
    });

    it('to a version name the installed server matches: upgrading, restart, system tables upgraded, healthy', async () => {
      const pid = await serverPid();
      const from = conductor.received.length;
      ok(await caller.api('upgrade', { upgrade_info: { datastore_version: installed } }));
      await conductor.waitFor((c) => heartbeat(c) === 'upgrading', 30_000, from);
      await conductor.waitFor((c) => heartbeat(c) === 'healthy', 120_000, from);
      expect(await serverPid()).not.toBe(pid);
      // MySQL upgrades its own system tables as it starts; MariaDB's upgrader leaves its mark.
      if (server.flavor === 'mariadb') expect(readFileSync(`${ta.stateDir}/mysql/data/mysql_upgrade_info`, 'utf8')).toContain(installed);
      expect(readFileSync(`${ta.stateDir}/datastore_version`, 'utf8').trim()).toBe(installed);
      expect(names(await caller.api('list_databases'))).toEqual(['app', 'd1', 'd2', 'd3']);
    });

    it('to a version this image does not have: the failure reaches Trove through the heartbeat, the server is left running', async () => {
      const pid = await serverPid();
      const from = conductor.received.length;
      ok(await caller.api('upgrade', { upgrade_info: { datastore_version: '11.4' } }));
      // Trove's taskmanager polls for healthy and fails the upgrade on this status.
      await conductor.waitFor((c) => heartbeat(c) === 'failed to spawn', 30_000, from);
      expect(logLines.join('')).toContain('cannot be swapped in place');
      expect(await serverPid()).toBe(pid);
      expect(names(await caller.api('list_databases'))).toEqual(['app', 'd1', 'd2', 'd3']);
      expect(readFileSync(`${ta.stateDir}/datastore_version`, 'utf8').trim()).toBe(installed);
      // The operator restarts at once: its outcome is not hidden behind the failure report (held 15 s otherwise).
      const failedAt = Date.now();
      const from2 = conductor.received.length;
      ok(await caller.api('restart'));
      await conductor.waitFor((c) => heartbeat(c) === 'healthy', 30_000, from2);
      expect(Date.now() - failedAt).toBeLessThan(12_000);
    });

    it('the image path: pre_upgrade saves, the image is replaced, post_upgrade brings the same data back', async () => {
      const info = ok(await caller.api('pre_upgrade')) as Record<string, string>;
      ok(await caller.api('stop_db'));
      // The new image has none of the agent's files outside the data volume.
      const { rmSync } = await import('node:fs');
      for (const f of ['my.cnf', 'conf.d', 'os_admin.cnf']) rmSync(`${ta.stateDir}/mysql/${f}`, { recursive: true, force: true });
      const from = conductor.received.length;
      ok(await caller.api('post_upgrade', { upgrade_info: info }));
      await conductor.waitFor((c) => heartbeat(c) === 'healthy', 60_000, from);
      expect(names(await caller.api('list_databases'))).toEqual(['app', 'd1', 'd2', 'd3']);
    });
  });

  describe('rebuild', () => {
    it('on a new guest image over the same data volume, rebuild brings the data back with a new os_admin password and the new configuration', async () => {
      const oldAdmin = readFileSync(`${ta.stateDir}/mysql/os_admin.cnf`, 'utf8');
      await ta.agent.stop();
      // Nova rebuilt the server: a fresh root disk (no prepare markers, no credentials); the data volume moves over.
      const fresh = mkdtempSync(join(tmpdir(), 'ga-rebuilt-'));
      mkdirSync(join(fresh, 'state', 'mysql'), { recursive: true });
      renameSync(`${ta.stateDir}/mysql/data`, join(fresh, 'state', 'mysql', 'data'));
      const sink = new Writable({ write(c, _e, cb) { logLines.push(String(c)); cb(); } });
      ta = await startTestAgent({ conductorQueue, transportUrl: rabbit.url, guestId, key: KEY, datastorePort: port, reportInterval: 4, factory: createMysqlDatastore, extraConf: server.extraConf, datastoreVersion: server.dsVersion, root: fresh, log: createLogger({ destination: sink, level: 'debug' }) });
      const from = conductor.received.length;
      // Trove's taskmanager casts rebuild with the re-rendered template and the configuration group's values.
      ok(await caller.api('rebuild', { ds_version: server.dsVersion, config_contents: '[mysqld]\nmax_connections = 66\n', config_overrides: { max_allowed_packet: 16777216 } }));
      const end = await conductor.waitFor((c) => c.method === 'heartbeat' && ['healthy', 'failed to spawn'].includes((c.kwargs['payload'] as { service_status: string }).service_status), 120_000, from);
      expect((end.kwargs['payload'] as { service_status: string }).service_status, logLines.slice(-20).join('')).toBe('healthy');
      expect(names(await caller.api('list_databases'))).toEqual(['app', 'd1', 'd2', 'd3']);
      const admin = readFileSync(`${ta.stateDir}/mysql/os_admin.cnf`, 'utf8');
      expect(statSync(`${ta.stateDir}/mysql/os_admin.cnf`).mode & 0o777).toBe(0o600);
      expect(admin).not.toBe(oldAdmin);
      const db = connectSql({ socketPath: `${ta.stateDir}/mysql/run/mysqld.sock`, user: 'os_admin', password: /password = (.*)/.exec(admin)![1]! });
      const [mc] = await db.query<{ v: number }>('SELECT @@GLOBAL.max_connections AS v');
      const [mp] = await db.query<{ v: number }>('SELECT @@GLOBAL.max_allowed_packet AS v');
      await db.end();
      expect(Number(mc!.v)).toBe(66);
      expect(Number(mp!.v)).toBe(16777216);
      // The rebuilt guest counts as prepared (heartbeats go on; a later prepare is refused, never run over live data).
      expect(statSync(join(ta.stateDir, '.guestagent.prepare.end')).isFile()).toBe(true);
    });
  });

  if (server.flavor === 'mysql') {
    describe('logical backups (mysqldump, then the binary logs) into Swift and back', () => {
      const context = { auth_token: swift.token, service_catalog: [{ type: 'object-store', endpoints: [{ publicURL: swift.storageUrl }] }] };
      const adminOf = (t: TestAgent) => connectSql({ socketPath: `${t.stateDir}/mysql/run/mysqld.sock`, user: 'os_admin', password: /password = (.*)/.exec(readFileSync(`${t.stateDir}/mysql/os_admin.cnf`, 'utf8'))![1]! });
      let full: Record<string, unknown>;
      let inc: Record<string, unknown>;

      /** A new guest beside the suite's (its own Trove caller and conductor, an agent whose log is kept in `lines`), torn down after `fn`. */
      async function withNewGuest(fn: (g: { caller2: PythonCaller; conductor2: PythonConductor; ta2: TestAgent; lines: string[] }) => Promise<void>): Promise<void> {
        const guest2 = randomUUID();
        const queue2 = `trove-conductor-${randomUUID()}`;
        const [caller2, conductor2] = await Promise.all([
          PythonCaller.start({ url: rabbit.url, guestId: guest2, key: KEY }),
          PythonConductor.start({ url: rabbit.url, keys: { [guest2]: KEY }, queue: queue2 }),
        ]);
        const lines: string[] = [];
        const sink = new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } });
        const ta2 = await startTestAgent({ conductorQueue: queue2, transportUrl: rabbit.url, guestId: guest2, key: KEY, datastorePort: await freePort(), reportInterval: 2, factory: createMysqlDatastore, extraConf: server.extraConf, datastoreVersion: server.dsVersion, log: createLogger({ destination: sink, level: 'debug' }) });
        try {
          await fn({ caller2, conductor2, ta2, lines });
        } finally {
          await ta2.agent.stop();
          await Promise.all([caller2.close(), conductor2.close()]);
        }
      }

      async function backup(parent: Record<string, unknown> | null): Promise<Record<string, unknown>> {
        const id = `b-${randomUUID()}`;
        const from = conductor.received.length;
        ok(await caller.api('create_backup', {
          backup_info: {
            id, instance_id: guestId, location: null, type: 'InnoBackupEx', checksum: null, datastore: 'mysql', datastore_version: server.dsVersion,
            ...(parent ? { parent: { location: parent['location'], checksum: parent['checksum'] } } : {}),
          },
        }, { context, notification: true }));
        const done = await conductor.waitFor((c) => c.method === 'update_backup' && c.kwargs['backup_id'] === id && c.kwargs['state'] !== 'BUILDING', 60_000, from);
        expect(done.kwargs, JSON.stringify(done.kwargs)).toMatchObject({ state: 'COMPLETED', success: true });
        expect(String(done.kwargs['location'])).toBe(`${swift.storageUrl}/database_backups/${id}.sql.gz`);
        return done.kwargs;
      }

      it('a full backup: one consistent mysqldump of every database, routine and account, tagged with where the binary log stood', async () => {
        const db = adminOf(ta);
        await db.query('CREATE TABLE app.items (id INT PRIMARY KEY, name VARCHAR(50), pic BLOB)');
        await db.query("INSERT INTO app.items VALUES (1, 'apple', x'00ff10'), (2, 'pear', NULL)");
        await db.query('CREATE VIEW app.names AS SELECT name FROM app.items');
        await db.query('CREATE FUNCTION app.twice(x INT) RETURNS INT DETERMINISTIC RETURN 2 * x');
        await db.end();
        full = await backup(null);
        const head = await fetch(String(full['location']), { method: 'HEAD', headers: { 'X-Auth-Token': swift.token } });
        expect(head.headers.get('etag')).toBe(full['checksum']);
        expect(head.headers.get('x-object-meta-gtid-mode')).toBe('ON');
        expect(head.headers.get('x-object-meta-binlog-start')).toMatch(/^binlog\.\d{6}$/);
      });

      it('an incremental backup: the binary logs since the full one', async () => {
        const db = adminOf(ta);
        await db.query("INSERT INTO app.items VALUES (3, 'plum', NULL)");
        await db.query("UPDATE app.items SET name = 'green apple' WHERE id = 1");
        await db.end();
        ok(await caller.api('create_user', { users: [{ _name: 'later', _host: '%', _password: SAFE_PASSWORD, _databases: [{ _name: 'app' }] }] }));
        inc = await backup(full);
        const head = await fetch(String(inc['location']), { method: 'HEAD', headers: { 'X-Auth-Token': swift.token } });
        expect(head.headers.get('x-object-meta-parent-location')).toBe(full['location']);
        expect(head.headers.get('x-object-meta-binlog-start')).not.toBe((await fetch(String(full['location']), { method: 'HEAD', headers: { 'X-Auth-Token': swift.token } })).headers.get('x-object-meta-binlog-start'));
      });

      it('a new instance prepared from the incremental one has every row, routine, user and grant, and its own os_admin', async () => {
        await withNewGuest(async ({ caller2, conductor2, ta2, lines }) => {
            ok(await caller2.api('prepare', {
              memory_mb: 512, packages: '', databases: [], users: [], device_path: null, mount_point: '/var/lib/mysql', config_contents: '[mysqld]\nmax_connections = 55\n', root_password: null, overrides: {}, ds_version: server.dsVersion,
              backup_info: { id: 'restore', location: inc['location'], type: 'InnoBackupEx', checksum: inc['checksum'] },
            }, { notification: true, context }));
            await conductor2.waitFor((c) => c.method === 'heartbeat' && (c.kwargs['payload'] as { service_status: string }).service_status === 'healthy', 120_000, 0);
            const [src, dst] = [adminOf(ta), adminOf(ta2)];
            try {
              const rows = 'SELECT id, name, HEX(pic) AS pic FROM app.items ORDER BY id';
              expect(await dst.query(rows)).toEqual(await src.query(rows));
              expect(await dst.query(rows)).toEqual([
                { id: 1, name: 'green apple', pic: '00FF10' }, { id: 2, name: 'pear', pic: null }, { id: 3, name: 'plum', pic: null },
              ]);
              expect(await dst.query('SELECT app.twice(21) AS v')).toEqual([{ v: 42 }]);
              expect(await dst.query('SELECT COUNT(*) AS n FROM app.names')).toEqual([{ n: 3 }]);
              // Its own configuration, not the one the load ran with.
              expect(await dst.query('SELECT @@GLOBAL.max_connections AS v')).toEqual([{ v: 55 }]);
            } finally {
              await Promise.all([src.end(), dst.end()]);
            }
            expect(ok(await caller2.api('list_databases'))).toEqual(ok(await caller.api('list_databases')));
            expect(ok(await caller2.api('list_users'))).toEqual(ok(await caller.api('list_users')));
            const later = connectSql({ socketPath: `${ta2.stateDir}/mysql/run/mysqld.sock`, user: 'later', password: SAFE_PASSWORD });
            expect(await later.query('SELECT COUNT(*) AS n FROM app.items')).toEqual([{ n: 3 }]);
            await later.end();
            expect(readFileSync(`${ta2.stateDir}/mysql/os_admin.cnf`, 'utf8')).not.toBe(readFileSync(`${ta.stateDir}/mysql/os_admin.cnf`, 'utf8'));
            expect(readdirSync(`${ta2.stateDir}/mysql/conf.d`).filter((f) => /init|oneoff|trailer/.test(f))).toEqual([]);
        });
      });

      it('an incremental backup on a parent that is not a logical MySQL backup fails with the reason, and Trove learns FAILED', async () => {
        const name = `b-${randomUUID()}.xbstream.gz`;
        const put = await fetch(`${swift.storageUrl}/database_backups/${name}`, { method: 'PUT', headers: { 'X-Auth-Token': swift.token }, body: 'a mariabackup stream' });
        expect(put.status).toBe(201);
        const id = `b-${randomUUID()}`;
        const from = conductor.received.length;
        ok(await caller.api('create_backup', {
          backup_info: {
            id, instance_id: guestId, location: null, type: 'InnoBackupEx', checksum: null, datastore: 'mysql', datastore_version: server.dsVersion,
            parent: { location: `${swift.storageUrl}/database_backups/${name}`, checksum: put.headers.get('etag') },
          },
        }, { context, notification: true }));
        const done = await conductor.waitFor((c) => c.method === 'update_backup' && c.kwargs['backup_id'] === id && c.kwargs['state'] !== 'BUILDING', 30_000, from);
        expect(done.kwargs).toMatchObject({ state: 'FAILED', success: false });
        expect(logLines.join('')).toContain('The parent backup is not a logical backup of a MySQL server');
      });

      it('a logical backup the server cannot load fails to spawn with the server\'s words, and leaves no server and no data directory', async () => {
        await withNewGuest(async ({ caller2, conductor2, ta2, lines }) => {
            const name = `b-${randomUUID()}.sql.gz`;
            const put = await fetch(`${swift.storageUrl}/database_backups/${name}`, { method: 'PUT', headers: { 'X-Auth-Token': swift.token }, body: gzipSync('CREATE DATABASE half;\nTHIS IS NOT SQL;\n') });
            expect(put.status).toBe(201);
            ok(await caller2.api('prepare', {
              memory_mb: 512, packages: '', databases: [], users: [], device_path: null, mount_point: '/var/lib/mysql', config_contents: null, root_password: null, overrides: {}, ds_version: server.dsVersion,
              backup_info: { id: 'b-y', location: `${swift.storageUrl}/database_backups/${name}`, type: 'InnoBackupEx', checksum: put.headers.get('etag') },
            }, { notification: true, context }));
            await conductor2.waitFor((c) => c.method === 'heartbeat' && (c.kwargs['payload'] as { service_status: string }).service_status === 'failed to spawn', 90_000);
            expect(lines.join(''), lines.slice(-5).join('')).toContain('You have an error in your SQL syntax');
            expect(existsSync(`${ta2.stateDir}/mysql/data`)).toBe(false);
            expect(execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(`${ta2.stateDir}/mysql`))).toEqual([]);
            expect(readdirSync(`${ta2.stateDir}/mysql/conf.d`).filter((f) => /trailer/.test(f))).toEqual([]);
        });
      });

      it('a physical backup (mariabackup, XtraBackup) is refused before the new server is touched, and it fails to spawn with the reason', async () => {
        await withNewGuest(async ({ caller2, conductor2, ta2, lines }) => {
            // A physical backup's name on top of a real object: the agent goes by what the chain is made of.
            const name = `b-${randomUUID()}.xbstream.gz`;
            const put = await fetch(`${swift.storageUrl}/database_backups/${name}`, { method: 'PUT', headers: { 'X-Auth-Token': swift.token }, body: 'not a backup' });
            expect(put.status).toBe(201);
            ok(await caller2.api('prepare', {
              memory_mb: 512, packages: '', databases: [], users: [], device_path: null, mount_point: '/var/lib/mysql', config_contents: null, root_password: null, overrides: {}, ds_version: server.dsVersion,
              backup_info: { id: 'b-x', location: `${swift.storageUrl}/database_backups/${name}`, type: 'InnoBackupEx', checksum: null },
            }, { notification: true, context }));
            await conductor2.waitFor((c) => c.method === 'heartbeat' && (c.kwargs['payload'] as { service_status: string }).service_status === 'failed to spawn', 60_000);
            expect(lines.join(''), lines.slice(-5).join('')).toContain('is a physical backup (mariabackup or XtraBackup)');
            expect(existsSync(`${ta2.stateDir}/mysql/data`)).toBe(false);
        });
      });
    });
  }
}
