/**
 * The exchanges, queues and bindings oslo.messaging 14's rabbit driver
 * declares for an RPC server (impl_rabbit.py declare_topic_consumer,
 * declare_fanout_consumer, _get_queue_arguments). They must match exactly:
 * Trove's taskmanager pre-declares `guestagent.<id>` before prepare, and a
 * queue declared again with other properties is refused with 406.
 */
import { uuidHex } from './envelope.ts';

export interface QueueOptions {
  /** amqp_durable_queues (default false). */
  durableQueues: boolean;
  /** amqp_auto_delete (default false). */
  autoDelete: boolean;
  /** rabbit_ha_queues (default false). */
  haQueues: boolean;
  /** rabbit_quorum_queue (default false) and its limits (0 = unset). */
  quorumQueue: boolean;
  quorumDeliveryLimit: number;
  quorumMaxMemoryLength: number;
  quorumMaxMemoryBytes: number;
  /** rabbit_transient_queues_ttl in seconds (default 1800). */
  transientQueuesTtlSec: number;
}

export interface ExchangeDecl {
  name: string;
  type: 'topic' | 'fanout';
  durable: boolean;
  autoDelete: boolean;
}

export interface QueueDecl {
  name: string;
  durable: boolean;
  autoDelete: boolean;
  arguments: Record<string, unknown>;
  exchange: string;
  routingKey: string;
}

export interface ServerTopology {
  exchanges: ExchangeDecl[];
  queues: QueueDecl[];
}

/** oslo's _get_queue_arguments; `ttlSec` is only passed for fanout (and reply) queues. */
export function queueArguments(o: QueueOptions, ttlSec: number, quorum: boolean): Record<string, unknown> {
  if (quorum && o.haQueues) {
    throw new Error('rabbit_quorum_queue and rabbit_ha_queues are both enabled: the queue type is quorum or HA (mirrored), not both');
  }
  const args: Record<string, unknown> = {};
  if (o.haQueues) args['x-ha-policy'] = 'all';
  if (quorum) {
    args['x-queue-type'] = 'quorum';
    if (o.quorumDeliveryLimit) args['x-delivery-limit'] = o.quorumDeliveryLimit;
    if (o.quorumMaxMemoryLength) args['x-max-in-memory-length'] = o.quorumMaxMemoryLength;
    if (o.quorumMaxMemoryBytes) args['x-max-in-memory-bytes'] = o.quorumMaxMemoryBytes;
  }
  if (ttlSec > 0) args['x-expires'] = ttlSec * 1000;
  return args;
}

/**
 * What an RPC server with target (exchange, topic, server) declares: the
 * topic exchange, a queue for the topic and one for topic.server, and a
 * per-process fanout queue (its name carries a fresh uuid each start).
 */
export function serverTopology(exchange: string, topic: string, server: string, o: QueueOptions): ServerTopology {
  const durable = o.durableQueues || o.quorumQueue;
  const topicArgs = queueArguments(o, 0, o.quorumQueue);
  const fanoutExchange = `${topic}_fanout`;
  return {
    exchanges: [
      { name: exchange, type: 'topic', durable, autoDelete: o.autoDelete },
      { name: fanoutExchange, type: 'fanout', durable: false, autoDelete: true },
    ],
    queues: [
      { name: topic, durable, autoDelete: o.autoDelete, arguments: topicArgs, exchange, routingKey: topic },
      {
        name: `${topic}.${server}`,
        durable,
        autoDelete: o.autoDelete,
        arguments: topicArgs,
        exchange,
        routingKey: `${topic}.${server}`,
      },
      {
        name: `${topic}_fanout_${uuidHex()}`,
        durable: false,
        autoDelete: false,
        arguments: queueArguments(o, o.transientQueuesTtlSec, false),
        exchange: fanoutExchange,
        routingKey: topic,
      },
    ],
  };
}

/** The subset of an amqplib channel that declaring needs. */
export interface DeclaringChannel {
  assertExchange(name: string, type: string, opts: { durable: boolean; autoDelete: boolean }): Promise<unknown>;
  assertQueue(name: string, opts: { durable: boolean; autoDelete: boolean; exclusive: boolean; arguments: Record<string, unknown> }): Promise<unknown>;
  bindQueue(queue: string, exchange: string, routingKey: string): Promise<unknown>;
}

/**
 * One queue of the topology as kombu declares it (its exchange, the queue, the binding). Each
 * takes a round trip, and a channel carries one at a time: the server declares each queue on
 * a channel of its own, side by side.
 */
export async function declareQueue(ch: DeclaringChannel, t: ServerTopology, q: QueueDecl): Promise<void> {
  const e = t.exchanges.find((x) => x.name === q.exchange);
  if (!e) throw new Error(`queue ${q.name} is bound to ${q.exchange}, which the topology does not declare`);
  await ch.assertExchange(e.name, e.type, { durable: e.durable, autoDelete: e.autoDelete });
  await ch.assertQueue(q.name, { durable: q.durable, autoDelete: q.autoDelete, exclusive: false, arguments: q.arguments });
  await ch.bindQueue(q.name, q.exchange, q.routingKey);
}
