// Trove's instance modules (`trove module-apply`, `module-query`, `module-remove`) driven by
// Trove's own guest API client: the module dicts are what Trove's DetailedModuleView sends
// (trove/module/views.py, contents as the API keeps them: base64), applied by Trove's `ping`
// driver, listed as admin and as a tenant, refused for another datastore or an unknown type.
import { randomUUID } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createRedisDatastore } from '../../../datastores/redis/index.ts';
import { startTestAgent, type TestAgent } from '../harness/agent.ts';
import { freePort } from '../harness/ports.ts';
import { PythonCaller, PythonConductor, resultOf as ok, serviceStatus as status } from '../harness/python-peer.ts';

const rabbit = inject('rabbit');
const conductorQueue = `trove-conductor-${randomUUID()}`;
const KEY = 'modules-key-' + randomUUID();
const guest = randomUUID();
let a: TestAgent;
let caller: PythonCaller;
let conductor: PythonConductor;
const b64 = (s: string) => Buffer.from(s).toString('base64');
const admin = { is_admin: true };
const tenant = { is_admin: false };

/** A module as Trove's DetailedModuleView(module).data(include_contents=True) shapes it. */
function module(o: { name: string; contents: string; type?: string; datastore?: string; visible?: boolean; isAdmin?: boolean; priority?: boolean; order?: number; tenant?: string }) {
  return {
    module: {
      id: randomUUID(), name: o.name, type: o.type ?? 'ping', description: `${o.name} module`, tenant_id: null, datastore_id: null, datastore_version_id: null,
      auto_apply: false, priority_apply: o.priority ?? false, apply_order: o.order ?? 5, is_admin: o.isAdmin ?? false, md5: 'md5-' + o.name,
      visible: o.visible ?? true, created: '2026-12-03T22:00:00', updated: '2026-12-03T22:00:00', tenant: o.tenant ?? 'all',
      datastore: o.datastore ?? 'all', datastore_version: 'all', live_update: false, contents: o.contents,
    },
  };
}
const fromPrepare = module({ name: 'at-prepare', contents: b64('# greeting\nmessage=hello from prepare\n') });

beforeAll(async () => {
  [caller, conductor] = await Promise.all([
    PythonCaller.start({ url: rabbit.url, guestId: guest, key: KEY }),
    PythonConductor.start({ url: rabbit.url, keys: { [guest]: KEY }, queue: conductorQueue }),
  ]);
  a = await startTestAgent({ conductorQueue, transportUrl: rabbit.url, guestId: guest, key: KEY, datastorePort: await freePort(), factory: createRedisDatastore, manager: 'redis' });
  ok(await caller.api('prepare', { memory_mb: 256, packages: '', databases: [], users: [], ds_version: '7.0', config_contents: 'save ""\n', modules: [fromPrepare] }));
  await conductor.waitFor((c) => c.kwargs['instance_id'] === guest && status(c) === 'healthy', 60_000);
}, 120_000);

afterAll(async () => {
  await a?.agent.stop();
  await Promise.all([caller?.close(), conductor?.close()]);
});

type Result = Record<string, unknown>;
const list = async (ctx: Record<string, unknown>, includeContents = false) => ok(await caller.api('module_list', { include_contents: includeContents }, { context: ctx })) as Result[];

describe('instance modules', () => {
  it('applies the modules prepare carries once the instance is ready, with the ping driver\'s message', async () => {
    const [r] = await list(admin);
    expect(r).toMatchObject({ id: fromPrepare.module.id, name: 'at-prepare', type: 'ping', status: 'OK', message: 'hello from prepare', removed: null, datastore: 'all', tenant: 'all', md5: 'md5-at-prepare', contents: null });
    expect(String(r!['created'])).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d\d$/);
    // Contents can be license keys: root-only on disk.
    const dir = join(a.stateDir, 'modules', 'ping', fromPrepare.module.id);
    expect(readFileSync(join(dir, 'contents.dat'), 'utf8')).toBe('# greeting\nmessage=hello from prepare\n');
    expect(statSync(join(dir, 'contents.dat')).mode & 0o777).toBe(0o600);
    expect(statSync(join(a.stateDir, 'modules')).mode & 0o777).toBe(0o700);
  });

  it('module_apply answers one result per module in Trove\'s order (priority first, then apply_order), ERROR where the driver fails', async () => {
    const late = module({ name: 'late', contents: b64('message=late'), order: 9 });
    const early = module({ name: 'early', contents: b64('message=early'), order: 1 });
    const first = module({ name: 'prio', contents: b64('message=prio'), order: 9, priority: true });
    const broken = module({ name: 'no-message', contents: b64('other=1\n'), order: 2 });
    const garbled = module({ name: 'garbled', contents: b64('not a key value line\n'), order: 3 });
    const res = ok(await caller.api('module_apply', { modules: [late, early, first, broken, garbled] }, { context: admin })) as Result[];
    expect(res.map((r) => [r['name'], r['status'], r['message']])).toEqual([
      ['prio', 'OK', 'prio'], ['early', 'OK', 'early'], ['no-message', 'ERROR', 'Message not found in contents file'],
      ['garbled', 'ERROR', 'Could not extract ping message: not enough values to unpack (expected 2, got 1)'], ['late', 'OK', 'late'],
    ]);
    // Applying again updates the record and keeps its creation time.
    const before = (await list(admin)).find((r) => r['name'] === 'early')!;
    await new Promise((r) => setTimeout(r, 30));
    const [again] = ok(await caller.api('module_apply', { modules: [{ module: { ...early.module, contents: b64('message=early again') } }] }, { context: admin })) as Result[];
    expect(again).toMatchObject({ message: 'early again', created: before['created'] });
    expect(String(again!['updated']) >= String(before['updated'])).toBe(true);
  });

  it('module_list hides invisible modules and admin contents from a tenant, and gives an admin the contents back as base64', async () => {
    const hidden = module({ name: 'hidden', contents: b64('message=h'), visible: false });
    const adminOnly = module({ name: 'admin-only', contents: b64('message=secret-license'), isAdmin: true });
    ok(await caller.api('module_apply', { modules: [hidden, adminOnly] }, { context: admin }));
    const asTenant = await list(tenant, true);
    expect(asTenant.map((r) => r['name'])).not.toContain('hidden');
    const ao = asTenant.find((r) => r['name'] === 'admin-only')!;
    expect(Buffer.from(String(ao['contents']), 'base64').toString()).toBe('Must be admin to retrieve contents for module admin-only');
    const asAdmin = await list(admin, true);
    expect(asAdmin.map((r) => r['name'])).toContain('hidden');
    expect(Buffer.from(String(asAdmin.find((r) => r['name'] === 'admin-only')!['contents']), 'base64').toString()).toBe('message=secret-license');
    // Newest first.
    expect(asAdmin.map((r) => String(r['updated']))).toEqual(asAdmin.map((r) => String(r['updated'])).sort().reverse());
  });

  it('refuses what Trove\'s agent refuses, with its exception classes', async () => {
    const other = await caller.api('module_apply', { modules: [module({ name: 'for-mysql', contents: b64('message=x'), datastore: 'mysql' })] }, { context: admin });
    expect(other).toMatchObject({ ok: false, error: { remote_class: 'ModuleInvalid', message: expect.stringContaining('Module not valid for datastore redis') } });
    const nr = await caller.api('module_apply', { modules: [module({ name: 'nr', contents: b64('license_key=abc'), type: 'new_relic_license' })] }, { context: admin });
    expect(nr).toMatchObject({ ok: false, error: { remote_class: 'ModuleTypeNotFound', message: expect.stringContaining("No driver implemented for module type 'new_relic_license'") } });
    const unnamed = module({ name: '', contents: b64('message=x') });
    // Python's AttributeError, as Trove's agent raises it (Trove's client wraps a builtin in GuestError).
    expect(await caller.api('module_apply', { modules: [unnamed] }, { context: admin })).toMatchObject({ ok: false, error: { message: expect.stringContaining('AttributeError: Module name not specified') } });
    const traversal = module({ name: 'evil', contents: b64('message=x') });
    (traversal.module as Record<string, unknown>)['id'] = '../../../etc';
    expect(await caller.api('module_apply', { modules: [traversal] }, { context: admin })).toMatchObject({ ok: false, error: { remote_class: 'BadRequest' } });
    expect((await list(admin)).map((r) => r['name'])).not.toContain('evil');
  });

  it('module_remove marks the module removed (gone from module_list); a module never applied is NotFound', async () => {
    ok(await caller.api('module_remove', { module: fromPrepare }, { context: admin }));
    expect((await list(admin)).map((r) => r['name'])).not.toContain('at-prepare');
    const never = await caller.api('module_remove', { module: module({ name: 'never', contents: b64('message=x') }) }, { context: admin });
    expect(never).toMatchObject({ ok: false, error: { remote_class: 'NotFound', message: expect.stringContaining("Module 'never' has not been applied") } });
    // Applied again, it is back.
    ok(await caller.api('module_apply', { modules: [fromPrepare] }, { context: admin }));
    expect((await list(admin)).find((r) => r['name'] === 'at-prepare')).toMatchObject({ removed: null, status: 'OK' });
  });
});
