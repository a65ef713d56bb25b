// Prepare as the taskmanager sends it (queue pre-declared before the agent
// runs), heartbeats and notifications decrypted by Trove's own host-side
// conductor serializer, report_interval honoured, and a clean stop.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createFakeDatastore, type FakeDatastore } from '../../fakes/datastore.ts';
import { startTestAgent, type TestAgent } from '../harness/agent.ts';
import { PythonCaller, PythonConductor, serviceStatus as status } from '../harness/python-peer.ts';

const rabbit = inject('rabbit');
const conductorQueue = `trove-conductor-${randomUUID()}`;
const KEY = 'conductor-key-' + randomUUID();
const guestId = randomUUID();
let ds: FakeDatastore;
let ta: TestAgent | undefined;
let caller: PythonCaller;
let conductor: PythonConductor;

beforeAll(async () => {
  [caller, conductor] = await Promise.all([
    PythonCaller.start({ url: rabbit.url, guestId, key: KEY }),
    PythonConductor.start({ url: rabbit.url, keys: { [guestId]: KEY }, queue: conductorQueue }),
  ]);
});
afterAll(async () => {
  await ta?.agent.stop();
  await Promise.all([caller?.close(), conductor?.close()]);
});

describe('prepare and conductor', () => {
  it('a prepare sent before the agent exists is consumed once it starts, with building then healthy', async () => {
    // trove.guestagent.api.API.prepare pre-declares the guest queue, then casts.
    const sent = await caller.api(
      'prepare',
      { memory_mb: 512, packages: '', databases: [], users: [], device_path: null, mount_point: '/tmp', ds_version: '10.11' },
      { notification: true },
    );
    expect(sent).toEqual({ ok: true, result: null });
    ta = await startTestAgent({ conductorQueue, transportUrl: rabbit.url, guestId, key: KEY, reportInterval: 2, factory: () => (ds = createFakeDatastore('/tmp')) });
    const building = await conductor.waitFor((c) => c.method === 'heartbeat' && status(c) === 'building');
    const healthy = await conductor.waitFor((c) => c.method === 'heartbeat' && status(c) === 'healthy');
    expect(building.kwargs['instance_id']).toBe(guestId);
    expect(Number(healthy.kwargs['sent'])).toBeGreaterThan(Number(building.kwargs['sent']));
    expect(ds.prepared).toHaveLength(1);
    expect(ds.prepared[0]!.dsVersion).toBe('10.11');
    // EndNotification: conductor gets notify_end with the taskmanager's notification.
    const end = await conductor.waitFor((c) => c.method === 'notify_end');
    expect(end.kwargs['serialized_notification']).toMatchObject({ instance_id: guestId, notification_classname: 'trove.common.notification.DBaaSInstanceCreate' });
    expect(end.context['user']).toBeNull();
  });

  it('heartbeats follow report_interval, at once on a change, with strictly increasing sent', async () => {
    const from = conductor.received.length;
    await new Promise((r) => setTimeout(r, 5000));
    const beats = conductor.received.slice(from).filter((c) => c.method === 'heartbeat');
    expect(beats.length).toBeGreaterThanOrEqual(2);
    expect(beats.length).toBeLessThanOrEqual(4);
    ds.setStatus('crashed');
    const crashed = await conductor.waitFor((c) => c.method === 'heartbeat' && status(c) === 'crashed', 8000);
    const all = conductor.received.filter((c) => c.method === 'heartbeat').map((c) => Number(c.kwargs['sent']));
    // (The conductor's thread pool may print them out of order; the values never repeat.)
    expect(new Set(all).size).toBe(all.length);
    expect(crashed.kwargs['instance_id']).toBe(guestId);
  });

  it('a second prepare is refused and reported to conductor as an error notification', async () => {
    const r = await caller.api('prepare', { memory_mb: 512, packages: '', databases: [], users: [] }, { notification: true });
    expect(r.ok).toBe(true);
    const exc = await conductor.waitFor((c) => c.method === 'notify_exc_info');
    expect(String(exc.kwargs['message'])).toMatch(/Prepare already ran/);
    expect(ds.prepared).toHaveLength(1);
  });

  it('stop lets an in-flight call finish, sends a last heartbeat and closes', async () => {
    ds.setStatus('healthy');
    let release!: () => void;
    ds.restartGate = new Promise((r) => (release = r));
    const before = ds.restarts;
    const inflight = caller.raw('restart', {}, { timeout: 30 });
    while (ds.restarts === before) await new Promise((r) => setTimeout(r, 50));
    const from = conductor.received.length;
    setTimeout(release, 1000);
    await ta!.agent.stop();
    const done = await inflight;
    expect(done, JSON.stringify(done)).toEqual({ ok: true, result: null });
    const last = await conductor.waitFor((c) => c.method === 'heartbeat', 5000, from);
    expect(status(last)).toBe('healthy');
    expect(ds.closed).toBe(true);
    expect(ta!.agent.state).toBe('stopped');
  });
});
