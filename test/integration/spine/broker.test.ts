// Broker options a Trove deployment sets: TLS to the broker, quorum queues,
// durable queues; and an outage: the broker goes away and comes back under a
// running agent, and a cast sent during the outage runs exactly once.
import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { createFakeDatastore, type FakeDatastore } from '../../fakes/datastore.ts';
import { startTestAgent } from '../harness/agent.ts';
import { PythonCaller } from '../harness/python-peer.ts';
import { listQueues, startApp, stopApp } from '../harness/rabbit.ts';
import { startRabbitNode } from '../setup/rabbit.ts';

const rabbit = inject('rabbit');

describe('broker options and outages', () => {
  it('talks TLS to the broker (ssl, ssl_ca_file) and still serves Trove', async () => {
    const guestId = randomUUID();
    const ta = await startTestAgent({
      transportUrl: `rabbit://guest:guest@localhost:${rabbit.tlsPort}/`,
      guestId, key: 'k', factory: () => createFakeDatastore('/tmp'),
      extraConf: `ssl = true\nssl_ca_file = ${rabbit.caFile}\n`,
    });
    const caller = await PythonCaller.start({ url: rabbit.url, guestId, key: 'k' });
    try {
      expect(await caller.raw('rpc_ping')).toEqual({ ok: true, result: true });
    } finally {
      await caller.close();
      await ta.agent.stop();
    }
  });

  it('declares quorum queues with their limits when rabbit_quorum_queue is set', async () => {
    const guestId = randomUUID();
    const ta = await startTestAgent({
      transportUrl: rabbit.url, guestId, key: 'k', factory: () => createFakeDatastore('/tmp'),
      extraConf: 'rabbit_quorum_queue = true\nrabbit_quorum_delivery_limit = 3\n', exchange: 'trove-quorum',
    });
    const caller = await PythonCaller.start({ url: rabbit.url, guestId, key: 'k', exchange: 'trove-quorum', extraConf: '[oslo_messaging_rabbit]\nrabbit_quorum_queue = true\nrabbit_quorum_delivery_limit = 3\n' });
    try {
      const q = listQueues(rabbit).find((x) => x.name === `guestagent.${guestId}`);
      expect(q).toMatchObject({ durable: true, type: 'quorum', arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 3 } });
      expect(await caller.raw('rpc_ping')).toEqual({ ok: true, result: true });
    } finally {
      await caller.close();
      await ta.agent.stop();
    }
  });

  it('reconnects after the broker goes away; a cast sent during the outage runs once', async () => {
    // Its own node: taking the suite's broker away would disturb tests running beside this one.
    const { info: rabbit, stop } = await startRabbitNode();
    const guestId = randomUUID();
    let ds!: FakeDatastore;
    // Durable queues (a common production setting) keep the cast through the broker restart.
    const durable = '[oslo_messaging_rabbit]\namqp_durable_queues = true\n';
    const ta = await startTestAgent({ transportUrl: rabbit.url, guestId, key: 'k', factory: () => (ds = createFakeDatastore('/tmp')), extraConf: 'amqp_durable_queues = true\n', exchange: 'trove-durable' });
    const caller = await PythonCaller.start({ url: rabbit.url, guestId, key: 'k', extraConf: durable, exchange: 'trove-durable' });
    try {
      expect(await caller.raw('rpc_ping')).toEqual({ ok: true, result: true });
      stopApp(rabbit);
      // The cast is handed to Trove's client while the broker is down; it retries until it is back.
      const cast = caller.raw('restart', {}, { call: false });
      await new Promise((r) => setTimeout(r, 2000));
      startApp(rabbit);
      expect(await cast).toEqual({ ok: true, result: null });
      const deadline = Date.now() + 30_000;
      while (ds.restarts < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      await new Promise((r) => setTimeout(r, 2000));
      expect(ds.restarts).toBe(1);
      const ping = await caller.raw('rpc_ping', {}, { timeout: 30 });
      expect(ping).toEqual({ ok: true, result: true });
    } finally {
      await caller.close();
      await ta.agent.stop();
      await stop();
    }
  });
});
