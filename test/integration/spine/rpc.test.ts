// The agent driven by Trove's own Python guest API client over a real
// RabbitMQ: successes, remote failures, unknown methods and versions, wrong
// keys, timeouts and the call monitor, casts beside calls, duplicates, and the
// queues as oslo.messaging declares them.
import { randomUUID } from 'node:crypto';
import amqplib from 'amqplib';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createFakeDatastore, type FakeDatastore } from '../../fakes/datastore.ts';
import { startTestAgent, type TestAgent } from '../harness/agent.ts';
import { PythonCaller } from '../harness/python-peer.ts';
import { listConsumers, listQueues } from '../harness/rabbit.ts';
import { buildCall, buildCast, parseReply } from '../../../src/rpc/envelope.ts';
import { createSecureCodec } from '../../../src/rpc/secure-codec.ts';
import { guestContext } from '../../../src/rpc/conductor.ts';

const rabbit = inject('rabbit');
const KEY = 'spine-key-' + randomUUID();
const guestId = randomUUID();
let ds: FakeDatastore;
let ta: TestAgent;
let caller: PythonCaller;

beforeAll(async () => {
  ta = await startTestAgent({ transportUrl: rabbit.url, guestId, key: KEY, factory: () => (ds = createFakeDatastore('/tmp')) });
  caller = await PythonCaller.start({ url: rabbit.url, guestId, key: KEY });
});
afterAll(async () => {
  await caller?.close();
  await ta?.agent.stop();
});

describe('calls from trove.guestagent.api.API', () => {
  it('answers rpc_ping, get_hwinfo, get_diagnostics and get_volume_info with Trove shapes', async () => {
    expect(await caller.raw('rpc_ping')).toEqual({ ok: true, result: true });
    const hw = await caller.api('get_hwinfo');
    expect(hw.ok && (hw.result as Record<string, number>)['num_cpus']).toBeGreaterThan(0);
    expect(hw.ok && Object.keys(hw.result as object).sort()).toEqual(['mem_total', 'num_cpus']);
    const diag = await caller.api('get_diagnostics');
    expect(diag.ok && Object.keys(diag.result as object).sort()).toEqual(['fd_size', 'threads', 'version', 'vm_hwm', 'vm_peak', 'vm_rss', 'vm_size']);
    const fs = await caller.api('get_volume_info');
    expect(fs.ok && Object.keys(fs.result as object).sort()).toEqual(['block_size', 'free', 'free_blocks', 'total', 'total_blocks', 'used']);
  });

  it('a remote failure reaches Trove as GuestError carrying the real class and reason', async () => {
    const r = await caller.api('list_users');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.class).toBe('GuestError');
    expect(r.error.remote_class).toBe('DatastoreOperationNotSupported');
    expect(r.error.message).toContain("The 'list_users' operation is not supported for the 'mysql' datastore.");
  });

  it('an unknown method is NoSuchMethod, a newer version UnsupportedVersion, and 1.2/1.3 methods are routed', async () => {
    const none = await caller.raw('no_such_method');
    expect(!none.ok && none.error.remote_class).toBe('NoSuchMethod');
    const v = await caller.raw('rpc_ping', {}, { version: '1.4' });
    expect(!v.ok && v.error.remote_class).toBe('UnsupportedVersion');
    expect(!v.ok && v.error.remote_message).toBe('Endpoint does not support RPC version 1.4. Attempted method: rpc_ping');
    const pre = await caller.raw('pre_create_backup', {}, { version: '1.2' });
    expect(!pre.ok && pre.error.remote_message).toContain("'pre_create_backup' operation is not supported");
    const bad = await caller.raw('get_user', { username: 'x' });
    expect(!bad.ok && bad.error.message).toContain("get_user() missing 1 required positional argument: 'hostname'");
  });

  it('a caller with the wrong key is refused and nothing runs; a plain caller gets KeyError', async () => {
    const wrong = await PythonCaller.start({ url: rabbit.url, guestId, key: 'not-the-key' });
    const plain = await PythonCaller.start({ url: rabbit.url, guestId, key: null });
    try {
      const before = ds.restarts;
      const r = await wrong.raw('restart', {}, { timeout: 10 });
      expect(!r.ok && r.error.class).toBe('ValueError');
      expect(!r.ok && r.error.message).toMatch(/not sealed with this instance's key/);
      const p = await plain.raw('restart', {}, { timeout: 10 });
      expect(!p.ok && p.error.class).toBe('KeyError');
      expect(ds.restarts).toBe(before);
    } finally {
      await wrong.close();
      await plain.close();
    }
  });

  it('a call longer than its timeout times out; with the call monitor it completes', async () => {
    let release!: () => void;
    ds.restartGate = new Promise((r) => (release = r));
    const timedOut = caller.raw('restart', {}, { timeout: 2 });
    // Overall timeout 30 s, but a silent server would be given up after 2 s: only heartbeats keep it alive.
    const monitored = caller.raw('restart', {}, { timeout: 30, callMonitorTimeout: 2 });
    // A cast and a call meanwhile: neither waits for the long calls.
    const started = Date.now();
    expect(await caller.raw('rpc_ping', {}, { timeout: 5 })).toEqual({ ok: true, result: true });
    expect(Date.now() - started).toBeLessThan(1500);
    const t = await timedOut;
    expect(!t.ok && t.error.class).toBe('MessagingTimeout');
    setTimeout(release, 4000);
    expect(await monitored).toEqual({ ok: true, result: null });
    ds.restartGate = null;
  });
});

describe('wire details', () => {
  it('declares the queues exactly as oslo.messaging does', () => {
    const qs = listQueues(rabbit).filter((q) => q.name.startsWith(`guestagent.${guestId}`));
    const topic = qs.find((q) => q.name === `guestagent.${guestId}`);
    const server = qs.find((q) => q.name === `guestagent.${guestId}.${guestId}`);
    const fanout = qs.find((q) => q.name.startsWith(`guestagent.${guestId}_fanout_`));
    expect(topic).toMatchObject({ durable: false, auto_delete: false, arguments: {} });
    expect(server).toMatchObject({ durable: false, auto_delete: false, arguments: {} });
    expect(fanout).toMatchObject({ durable: false, auto_delete: false, arguments: { 'x-expires': 1800000 } });
  });

  it('consumes its three queues on one channel, replies on another, and closes the channels it declared on', () => {
    const mine = listConsumers(rabbit, (q) => q.startsWith(`guestagent.${guestId}`));
    expect(mine.map((c) => c.queue).sort()).toEqual(
      [`guestagent.${guestId}`, `guestagent.${guestId}.${guestId}`, expect.stringMatching(new RegExp(`^guestagent\\.${guestId}_fanout_[0-9a-f]{32}$`))],
    );
    // oslo acks on receipt; without a prefetch limit the broker acks on delivery (server.ts).
    for (const c of mine) expect(c).toMatchObject({ ackRequired: false, prefetchCount: 0, connectionChannels: 2 });
  });

  it('with rabbit_qos_prefetch_count, consumes under that limit and acks each request', async () => {
    const id = randomUUID();
    const limited = await startTestAgent({ transportUrl: rabbit.url, guestId: id, key: KEY, factory: () => createFakeDatastore('/tmp'), extraConf: 'rabbit_qos_prefetch_count = 2\n' });
    const c = await PythonCaller.start({ url: rabbit.url, guestId: id, key: KEY });
    try {
      const mine = listConsumers(rabbit, (q) => q.startsWith(`guestagent.${id}`));
      expect(mine).toHaveLength(3);
      for (const row of mine) expect(row).toMatchObject({ ackRequired: true, prefetchCount: 2, connectionChannels: 2 });
      // Unacked requests would stop the deliveries after the second.
      for (let i = 0; i < 5; i++) expect(await c.raw('rpc_ping', {}, { timeout: 10 })).toEqual({ ok: true, result: true });
    } finally {
      await c.close();
      await limited.agent.stop();
    }
  });

  it('drops a duplicate delivery of the same _unique_id', async () => {
    const codec = createSecureCodec(KEY);
    const body = buildCast('restart', {}, '1.0', { context: codec.encrypt(guestContext()) });
    const conn = await amqplib.connect(rabbit.url);
    const ch = await conn.createChannel();
    const before = ds.restarts;
    ch.publish('trove', `guestagent.${guestId}`, body);
    ch.publish('trove', `guestagent.${guestId}`, body);
    await new Promise((r) => setTimeout(r, 1000));
    expect(ds.restarts).toBe(before + 1);
    await conn.close();
  });

  it("retries a reply whose queue does not exist yet, as oslo does, and delivers it once the caller declares it", async () => {
    const codec = createSecureCodec(KEY);
    const hex = () => randomUUID().replaceAll('-', '');
    const msgId = hex();
    const replyQ = `reply_${hex()}`;
    const conn = await amqplib.connect(rabbit.url);
    try {
      const ch = await conn.createChannel();
      ch.publish('trove', `guestagent.${guestId}`, buildCall('rpc_ping', {}, '1.0', { context: codec.encrypt(guestContext()) }, msgId, replyQ));
      // The broker returns the reply (no such queue) and the agent publishes it again every 250 ms.
      await new Promise((r) => setTimeout(r, 1500));
      await ch.assertQueue(replyQ, { durable: false, autoDelete: false });
      const replies: Buffer[] = [];
      await ch.consume(replyQ, (m) => void (m && replies.push(m.content)), { noAck: true });
      const deadline = Date.now() + 5000;
      while (replies.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 750)); // no second copy once it got through
      expect(replies).toHaveLength(1);
      const reply = parseReply(replies[0]!);
      expect(reply).toMatchObject({ msgId, failure: null, ending: true });
      expect(codec.decrypt(reply.result)).toBe(true);
      await ch.deleteQueue(replyQ);
    } finally {
      await conn.close();
    }
  });
});
