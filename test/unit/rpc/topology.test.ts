import { describe, expect, it } from 'vitest';
import { serverTopology, type QueueOptions } from '../../../src/rpc/topology.ts';

const defaults: QueueOptions = {
  durableQueues: false, autoDelete: false, haQueues: false, quorumQueue: false,
  quorumDeliveryLimit: 0, quorumMaxMemoryLength: 0, quorumMaxMemoryBytes: 0, transientQueuesTtlSec: 1800,
};

describe('server topology (oslo impl_rabbit)', () => {
  it('declares what WIRE.md observed with defaults', () => {
    const t = serverTopology('trove', 'guestagent.g1', 'g1', defaults);
    expect(t.exchanges).toEqual([
      { name: 'trove', type: 'topic', durable: false, autoDelete: false },
      { name: 'guestagent.g1_fanout', type: 'fanout', durable: false, autoDelete: true },
    ]);
    const [topic, server, fanout] = t.queues;
    expect(topic).toEqual({ name: 'guestagent.g1', durable: false, autoDelete: false, arguments: {}, exchange: 'trove', routingKey: 'guestagent.g1' });
    expect(server).toMatchObject({ name: 'guestagent.g1.g1', arguments: {}, routingKey: 'guestagent.g1.g1' });
    expect(fanout!.name).toMatch(/^guestagent\.g1_fanout_[0-9a-f]{32}$/);
    expect(fanout).toMatchObject({ durable: false, autoDelete: false, arguments: { 'x-expires': 1_800_000 }, exchange: 'guestagent.g1_fanout' });
  });
  it('quorum queues: durable topic queues with limits; fanout stays classic', () => {
    const t = serverTopology('trove', 'guestagent.g1', 'g1', { ...defaults, quorumQueue: true, quorumDeliveryLimit: 5, quorumMaxMemoryBytes: 1024 });
    expect(t.exchanges[0]!.durable).toBe(true);
    expect(t.queues[0]).toMatchObject({ durable: true, arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 5, 'x-max-in-memory-bytes': 1024 } });
    expect(t.queues[2]!.arguments).toEqual({ 'x-expires': 1_800_000 });
  });
  it('HA and durable/auto-delete options', () => {
    const t = serverTopology('trove', 'guestagent.g1', 'g1', { ...defaults, haQueues: true, durableQueues: true, autoDelete: true, transientQueuesTtlSec: 0 });
    expect(t.queues[0]).toMatchObject({ durable: true, autoDelete: true, arguments: { 'x-ha-policy': 'all' } });
    expect(t.queues[2]!.arguments).toEqual({ 'x-ha-policy': 'all' });
    expect(() => serverTopology('trove', 't', 's', { ...defaults, haQueues: true, quorumQueue: true })).toThrow(/not both/);
  });
});
