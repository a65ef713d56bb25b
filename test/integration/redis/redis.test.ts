// A Redis instance driven by Trove's own client: ACL users enforced by a real
// Redis client, root on and off, overrides live and after a restart, and an
// RDB backup of 200,000 keys restored into a new agent-started server, and
// the server log published to Swift as the 'redis' guest log.
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createRedisDatastore } from '../../../datastores/redis/index.ts';
import { connectResp, type RespClient } from '../../../datastores/redis/resp.ts';
import { startTestAgent, type TestAgent } from '../harness/agent.ts';
import { freePort } from '../harness/ports.ts';
import { PythonCaller, PythonConductor, resultOf as ok, serviceStatus as status } from '../harness/python-peer.ts';

const rabbit = inject('rabbit');
const conductorQueue = `trove-conductor-${randomUUID()}`;
const swift = inject('swift');
const KEY = 'redis-key-' + randomUUID();
const source = randomUUID();
const target = randomUUID();
const context = { auth_token: swift.token, service_catalog: [{ type: 'object-store', endpoints: [{ publicURL: swift.storageUrl }] }] };
let a: TestAgent;
let b: TestAgent;
let callA: PythonCaller;
let callB: PythonCaller;
let conductor: PythonConductor;
let portA: number;

async function as(ta: TestAgent, user: string, password: string): Promise<RespClient> {
  const c = await connectResp({ path: `${ta.stateDir}/redis/run/redis.sock` });
  await c.call('AUTH', user, password);
  return c;
}
const admin = (ta: TestAgent) => as(ta, 'os_admin', readFileSync(`${ta.stateDir}/redis/os_admin.pass`, 'utf8').trim());

beforeAll(async () => {
  [callA, callB, conductor] = await Promise.all([
    PythonCaller.start({ url: rabbit.url, guestId: source, key: KEY }),
    PythonCaller.start({ url: rabbit.url, guestId: target, key: KEY }),
    PythonConductor.start({ url: rabbit.url, keys: { [source]: KEY, [target]: KEY }, queue: conductorQueue }),
  ]);
  portA = await freePort();
  a = await startTestAgent({ conductorQueue, transportUrl: rabbit.url, guestId: source, key: KEY, datastorePort: portA, factory: createRedisDatastore, manager: 'redis' });
  ok(await callA.api('prepare', {
    memory_mb: 256, packages: '', databases: [], ds_version: '7.0', config_contents: 'save ""\nappendonly no\n', overrides: { 'maxmemory-policy': 'allkeys-lru' },
    users: [{ _name: 'alice', _password: 'Al1ce-pw', _databases: [{ _name: 'app' }] }],
  }));
  await conductor.waitHealthy(source, 60_000, () => a.logTail());
}, 120_000);

afterAll(async () => {
  await a?.agent.stop();
  await b?.agent.stop();
  await Promise.all([callA?.close(), callB?.close(), conductor?.close()]);
});

describe('redis users, root and configuration', () => {
  it('only authenticated clients get in; users are confined to their namespaces', async () => {
    const anon = await connectResp({ path: `${a.stateDir}/redis/run/redis.sock` });
    await expect(anon.call('PING')).rejects.toThrow(/NOAUTH|NOPERM|auth/i);
    anon.close();
    const alice = await as(a, 'alice', 'Al1ce-pw');
    expect(await alice.call('SET', 'app:1', 'x')).toBe('OK');
    await expect(alice.call('SET', 'other:1', 'x')).rejects.toThrow(/NOPERM/);
    await expect(alice.call('CONFIG', 'SET', 'maxmemory', '1')).rejects.toThrow(/NOPERM/);
    alice.close();
    ok(await callA.api('grant_access', { username: 'alice', hostname: '%', databases: ['other'] }));
    expect((ok(await callA.api('list_access', { username: 'alice', hostname: '%' })) as Array<{ _name: string }>).map((d) => d._name)).toEqual(['app', 'other']);
    const again = await as(a, 'alice', 'Al1ce-pw');
    expect(await again.call('SET', 'other:1', 'x')).toBe('OK');
    again.close();
    ok(await callA.api('revoke_access', { username: 'alice', hostname: '%', database: 'other' }));
    const users = ok(await callA.api('list_users')) as [Array<{ _name: string; _databases: unknown[] }>, null];
    expect(users[0].map((u) => u._name)).toEqual(['alice']);
    ok(await callA.api('change_passwords', { users: [{ _name: 'alice', _password: 'N3w-pw' }] }));
    await new Promise((r) => setTimeout(r, 300));
    await expect(as(a, 'alice', 'Al1ce-pw')).rejects.toThrow(/WRONGPASS/);
    (await as(a, 'alice', 'N3w-pw')).close();
    const dbs = await callA.api('list_databases');
    expect(!dbs.ok && dbs.error.message).toMatch(/not supported for the 'redis' datastore/);
  });

  it('root is the default user with a password', async () => {
    expect(ok(await callA.api('is_root_enabled'))).toBe(false);
    const root = ok(await callA.api('enable_root_with_password', { root_password: 'R00t-pw' })) as { _password: string };
    expect(root._password).toBe('R00t-pw');
    const def = await connectResp({ path: `${a.stateDir}/redis/run/redis.sock` });
    await def.call('AUTH', 'R00t-pw');
    expect(await def.call('CONFIG', 'GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'allkeys-lru']);
    def.close();
    ok(await callA.api('disable_root'));
    expect(ok(await callA.api('is_root_enabled'))).toBe(false);
  });

  it('applies overrides live and keeps them across a restart', async () => {
    ok(await callA.api('update_overrides', { overrides: { 'maxmemory-policy': 'volatile-lru' } }));
    ok(await callA.api('apply_overrides', { overrides: { 'maxmemory-policy': 'volatile-lru' } }));
    let c = await admin(a);
    expect(await c.call('CONFIG', 'GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'volatile-lru']);
    c.close();
    ok(await callA.api('restart'));
    c = await admin(a);
    expect(await c.call('CONFIG', 'GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'volatile-lru']);
    c.close();
    (await as(a, 'alice', 'N3w-pw')).close(); // ACLs survived the restart
  });
});

describe('redis guest log', () => {
  it("publishes the server log ('redis', SYSTEM, admin only by default) to Swift in increments, without passwords, then discards it", async () => {
    const adminCtx = { ...context, is_admin: true };
    const act = (o: { enable?: boolean; disable?: boolean; publish?: boolean; discard?: boolean }, ctx: Record<string, unknown> = adminCtx) =>
      callA.api('guest_log_action', { log_name: 'redis', enable: false, disable: false, publish: false, discard: false, ...o }, { context: ctx });
    const prefix = `${source}/redis-redis/`;
    // [redis] guest_log_exposed_logs is empty, as in Trove: a project user sees neither log.
    expect(ok(await callA.api('guest_log_list', {}, { context }))).toEqual([]);
    const forbidden = await act({ publish: true }, context);
    expect(!forbidden.ok && forbidden.error.remote_class, JSON.stringify(forbidden)).toBe('LogAccessForbidden');
    const listed = ok(await callA.api('guest_log_list', {}, { context: adminCtx })) as Array<Record<string, unknown>>;
    expect(listed.map((l) => [l['name'], l['type']])).toEqual([['redis', 'SYS'], ['guest', 'SYS']]);
    // The server has been writing since prepare (and the restart above): there is something to publish.
    expect(listed[0]).toMatchObject({ status: 'Ready', published: 0, container: 'None', metafile: `${source}/redis-redis_metafile` });
    expect(Number(listed[0]!['pending'])).toBeGreaterThan(0);
    // Always on: Redis 7 cannot move `logfile` at runtime, so there is nothing to switch.
    const enable = await act({ enable: true });
    expect(!enable.ok && enable.error.remote_class, JSON.stringify(enable)).toBe('BadRequest');
    const disable = await act({ disable: true });
    expect(!disable.ok && disable.error.remote_class).toBe('BadRequest');

    ok(await callA.api('change_passwords', { users: [{ _name: 'alice', _password: 'Never-In-The-Redis-Log-1' }] }));
    const first = ok(await act({ publish: true })) as Record<string, unknown>;
    expect(first).toMatchObject({ name: 'redis', type: 'SYS', status: 'Published', pending: 0, container: 'database_logs', prefix });
    const objects = async () => (await (await fetch(`${swift.storageUrl}/database_logs?format=json&prefix=${encodeURIComponent(prefix)}`, { headers: { 'X-Auth-Token': swift.token } })).json()) as Array<{ name: string; bytes: number }>;
    const text = async (name: string) => (await fetch(`${swift.storageUrl}/database_logs/${name}`, { headers: { 'X-Auth-Token': swift.token } })).text();
    const one = await objects();
    expect(one.length).toBeGreaterThanOrEqual(1);
    expect(one.every((o) => /^log-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/.test(o.name.slice(prefix.length))), JSON.stringify(one)).toBe(true);
    expect(one.reduce((n, o) => n + o.bytes, 0)).toBe(first['published']);
    const published = (await Promise.all(one.map((o) => text(o.name)))).join('');
    expect(published).toMatch(/^\d+:C .* # oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo$/m);
    expect(published).toContain('Ready to accept connections');
    expect(published).toContain('User requested shutdown...'); // the restart of the overrides test
    const adminPw = readFileSync(`${a.stateDir}/redis/os_admin.pass`, 'utf8').trim();
    for (const secret of [adminPw, 'Never-In-The-Redis-Log', 'N3w-pw', 'Al1ce-pw', 'R00t-pw']) expect(published).not.toContain(secret);
    const meta = JSON.parse(await text(`${source}/redis-redis_metafile`)) as Record<string, unknown>;
    expect(meta).toMatchObject({ log_name: 'redis', log_type: 'SYS', log_file: `${a.stateDir}/redis/log/redis-server.log`, log_size: first['published'] });

    // Only what is new goes up the second time: a snapshot's lines.
    const c = await admin(a);
    expect(await c.call('BGSAVE')).toMatch(/Background saving started/);
    c.close();
    await new Promise((r) => setTimeout(r, 1500));
    const second = ok(await act({ publish: true })) as Record<string, unknown>;
    expect(Number(second['published'])).toBeGreaterThan(Number(first['published']));
    const two = await objects();
    expect(two.length).toBeGreaterThan(one.length);
    const added = (await Promise.all(two.filter((o) => !one.some((x) => x.name === o.name)).map((o) => text(o.name)))).join('');
    expect(added).toContain('Background saving started by pid');
    expect(added).not.toContain('Ready to accept connections');

    expect(ok(await act({ discard: true }))).toMatchObject({ published: 0, container: 'None' });
    expect(await objects()).toEqual([]);
  });
});

describe('redis backups', () => {
  it('backs up 200,000 keys to Swift and restores them into a new server', async () => {
    const c = await admin(a);
    for (let i = 0; i < 200; i++) {
      const args: string[] = [];
      for (let j = 0; j < 1000; j++) args.push(`app:k${i * 1000 + j}`, `value-${i * 1000 + j}`);
      await c.call('MSET', ...args);
    }
    const size = Number(await c.call('DBSIZE'));
    c.close();
    expect(size).toBeGreaterThanOrEqual(200_000);
    const from = conductor.received.length;
    ok(await callA.api('create_backup', { backup_info: { id: 'rb-' + randomUUID().slice(0, 8), instance_id: source, datastore: 'redis', datastore_version: '7.0' } }, { context }));
    const done = await conductor.waitFor((x) => x.method === 'update_backup' && x.kwargs['state'] !== 'BUILDING', 120_000, from);
    expect(done.kwargs, JSON.stringify(done.kwargs)).toMatchObject({ state: 'COMPLETED', success: true });
    expect(String(done.kwargs['location'])).toMatch(/\.rdb\.gz$/);

    b = await startTestAgent({ conductorQueue, transportUrl: rabbit.url, guestId: target, key: KEY, datastorePort: await freePort(), factory: createRedisDatastore, manager: 'redis' });
    ok(await callB.api('prepare', {
      memory_mb: 256, packages: '', databases: [], users: [], ds_version: '7.0', config_contents: 'save ""\nappendonly no\n',
      backup_info: { id: 'restore', location: done.kwargs['location'], checksum: done.kwargs['checksum'] },
    }, { context }));
    await conductor.waitFor((x) => x.kwargs['instance_id'] === target && status(x) === 'healthy', 60_000);
    const r = await admin(b);
    expect(Number(await r.call('DBSIZE'))).toBe(size);
    expect(await r.call('GET', 'app:k123456')).toBe('value-123456');
    r.close();
  });
});

describe('redis rebuild', () => {
  it('on a new guest image over the same data volume: keys and Trove users kept, a new admin password, the new configuration', async () => {
    const c = await admin(a);
    const size = Number(await c.call('DBSIZE'));
    await c.call('SAVE'); // the instance runs without save points: put the data set on the volume first
    c.close();
    const oldPass = readFileSync(`${a.stateDir}/redis/os_admin.pass`, 'utf8');
    await a.agent.stop();
    const fresh = mkdtempSync(join(tmpdir(), 'ga-redis-rebuilt-'));
    mkdirSync(join(fresh, 'state', 'redis'), { recursive: true });
    renameSync(`${a.stateDir}/redis/data`, join(fresh, 'state', 'redis', 'data'));
    a = await startTestAgent({ conductorQueue, transportUrl: rabbit.url, guestId: source, key: KEY, datastorePort: portA, factory: createRedisDatastore, manager: 'redis', root: fresh });
    const from = conductor.received.length;
    ok(await callA.api('rebuild', { ds_version: '7.0', config_contents: 'save ""\nappendonly no\n', config_overrides: { 'maxmemory-policy': 'allkeys-lfu' } }));
    const end = await conductor.waitFor((x) => x.kwargs['instance_id'] === source && ['healthy', 'failed to spawn'].includes(status(x) ?? ''), 60_000, from);
    expect(status(end), a.logTail()).toBe('healthy');
    expect(readFileSync(`${a.stateDir}/redis/os_admin.pass`, 'utf8')).not.toBe(oldPass);
    const r = await admin(a);
    expect(Number(await r.call('DBSIZE'))).toBe(size);
    expect(await r.call('CONFIG', 'GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'allkeys-lfu']);
    r.close();
    // alice's ACL entry lived on the volume: her password from before the rebuild (set by the guest log test) still works.
    const alice = await as(a, 'alice', 'Never-In-The-Redis-Log-1');
    expect(await alice.call('SET', 'app:after-rebuild', 'x')).toBe('OK');
    alice.close();
  });
});
