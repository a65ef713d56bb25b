/**
 * The agent's oslo.messaging RPC server on amqplib: declares the topology
 * oslo declares, consumes the topic, topic.server and fanout queues, acks on
 * receipt (oslo acks before dispatching: at-most-once; without a prefetch
 * limit the broker's auto-ack gives the same contract), drops duplicates by
 * `_unique_id`, runs every request concurrently (a cast never blocks a call),
 * sends call-monitor heartbeats while a call runs, and replies on the
 * caller's reply queue through the default exchange with `mandatory` set,
 * retrying for up to a minute while the reply queue is missing, as
 * amqpdriver.py does.
 */
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { Logger } from '../log.ts';
import type { BrokerConnection } from './connection.ts';
import type { Dispatcher } from './dispatcher.ts';
import { buildReply, EnvelopeError, parseRequest, type IncomingRequest } from './envelope.ts';
import { serializeFailure } from './failure.ts';
import type { RequestCodec } from './request-codec.ts';
import { declareQueue, type ServerTopology } from './topology.ts';

export interface RpcServerOptions {
  connection: BrokerConnection;
  topology: ServerTopology;
  dispatcher: Dispatcher;
  codec: RequestCodec;
  /** rabbit_qos_prefetch_count; 0 = no basic.qos. */
  prefetch: number;
  log: Logger;
  /** How long a reply is retried while its queue is missing, ms (oslo: 60 s). */
  replyRetryMs?: number;
  /** How many `_unique_id`s are remembered for duplicate detection. */
  dedupeSize?: number;
  /** Called after each request is handled (and answered). */
  onHandled?: () => void;
}

/** AMQP properties oslo puts on every message it publishes. */
export const PUBLISH_PROPERTIES = {
  contentType: 'application/json',
  contentEncoding: 'utf-8',
  deliveryMode: 2,
  priority: 0,
  headers: {},
} as const;

/** A reply the broker may still return; not its body (a return carries the body back). */
interface PendingReply {
  replyQ: string;
  deadline: number;
  msgId: string;
}

/** How long a published reply stays retryable, at least (at most twice this): a return comes back within ms. */
const RETURN_WINDOW_MS = 5_000;

export class RpcServer {
  readonly #o: RpcServerOptions;
  #consumeCh: Channel | null = null;
  #publishCh: Channel | null = null;
  #consumerTags: string[] = [];
  #stopping = false;
  readonly #inflight = new Set<Promise<void>>();
  readonly #abort = new AbortController();
  readonly #seen: string[] = [];
  readonly #seenSet = new Set<string>();
  /**
   * Replies published with mandatory, keyed by their `_unique_id`, until the broker could
   * return them: two generations swapped every RETURN_WINDOW_MS by one timer, not a timer
   * per reply. Keeping each reply's body here for 5 s held ~40 MiB after a burst of calls.
   */
  #pending = new Map<string, PendingReply>();
  #pendingOld = new Map<string, PendingReply>();
  #rotation: NodeJS.Timeout | null = null;

  constructor(o: RpcServerOptions) {
    this.#o = o;
  }

  /** Registers with the connection: (re)declares and consumes on every connect. */
  start(): void {
    this.#o.connection.onConnect((model) => this.#setup(model));
  }

  get inflight(): number {
    return this.#inflight.size;
  }

  async #setup(model: ChannelModel): Promise<void> {
    if (this.#stopping) return;
    const log = this.#o.log;
    const { topology } = this.#o;
    // Every channel at once, and each queue declared on its own (the consumer channel declares the
    // first): a channel carries one request at a time, and the declarations and consumers one after
    // another took ~18 ms of the agent's start, side by side ~13 (marks in a build, 5 launches).
    const [pub, ch, spare] = await Promise.all([
      model.createChannel(),
      model.createChannel(),
      Promise.all(topology.queues.slice(1).map(() => model.createChannel())),
    ]);
    pub.on('error', (err: Error) => log.warn({ err }, 'reply channel error'));
    pub.on('return', (msg: ConsumeMessage) => this.#onReturned(msg));
    this.#publishCh = pub;
    ch.on('error', (err: Error) => log.warn({ err }, 'consumer channel error'));
    for (const c of spare) c.on('error', (err: Error) => log.warn({ err }, 'declaring channel error'));
    try {
      this.#consumeCh = ch;
      this.#consumerTags = [];
      // Each queue is consumed once it is declared, the topic queue (Trove's calls) first. The
      // consumer channel takes the prefetch limit before anything else it carries.
      await Promise.all(
        topology.queues.map(async (q, i) => {
          if (i === 0 && this.#o.prefetch > 0) await ch.prefetch(this.#o.prefetch);
          await declareQueue(i === 0 ? ch : spare[i - 1]!, topology, q);
          const { consumerTag } = await ch.consume(
            q.name,
            (msg) => {
              if (msg) this.#onMessage(ch, msg);
            },
            // oslo acks each request on receipt, before dispatch (at-most-once).
            // Without a prefetch limit we let the broker consider it acked on
            // delivery instead: the same at-most-once contract, one frame and
            // one write less per request (~15% of the agent's CPU per call).
            // With rabbit_qos_prefetch_count set, acks are needed for the limit.
            { noAck: this.#o.prefetch === 0 },
          );
          this.#consumerTags.push(consumerTag);
        }),
      );
    } finally {
      for (const c of spare) c.close().catch(() => {});
    }
    log.info({ queues: topology.queues.map((q) => q.name) }, 'rpc server consuming');
  }

  #onMessage(ch: Channel, msg: ConsumeMessage): void {
    try {
      if (this.#o.prefetch !== 0) ch.ack(msg);
    } catch (err) {
      // oslo skips the upcall when the ack fails: the broker will redeliver.
      this.#o.log.warn({ err }, 'ack failed; not dispatching');
      return;
    }
    let req: IncomingRequest;
    try {
      req = parseRequest(msg.content);
    } catch (err) {
      const reason = err instanceof EnvelopeError ? err.message : String(err);
      this.#o.log.error({ reason, routingKey: msg.fields.routingKey }, 'dropping malformed message');
      return;
    }
    if (req.uniqueId !== null) {
      if (this.#seenSet.has(req.uniqueId)) {
        this.#o.log.warn({ unique_id: req.uniqueId, method: req.method }, 'ignoring duplicate message');
        return;
      }
      this.#remember(req.uniqueId);
    }
    const p = this.#handle(req).finally(() => this.#inflight.delete(p));
    this.#inflight.add(p);
  }

  #remember(id: string): void {
    const max = this.#o.dedupeSize ?? 4096;
    this.#seen.push(id);
    this.#seenSet.add(id);
    while (this.#seen.length > max) this.#seenSet.delete(this.#seen.shift()!);
  }

  async #handle(req: IncomingRequest): Promise<void> {
    const isCall = req.msgId !== null && req.replyQ !== null;
    const started = performance.now();
    const log = this.#o.log;
    let monitor: NodeJS.Timeout | null = null;
    if (isCall && req.timeout !== null) {
      // oslo's call monitor: heartbeat every timeout/2 s when that is >= 1 s.
      const interval = Math.trunc(req.timeout) / 2;
      if (interval >= 1) {
        monitor = setInterval(() => {
          void this.#reply(req.msgId!, req.replyQ!, { result: null, failure: null, ending: false }, false);
        }, interval * 1000);
      }
    }
    let result: unknown = null;
    let failure: string | null = null;
    try {
      result = await this.#o.dispatcher.dispatch(req, this.#o.codec, this.#abort.signal);
    } catch (err) {
      failure = serializeFailure(err);
      log.warn({ method: req.method, msg_id: req.msgId, err }, 'rpc method failed');
    } finally {
      if (monitor) clearInterval(monitor);
    }
    log.debug({ method: req.method, ms: Math.round(performance.now() - started), call: isCall }, 'rpc handled');
    if (isCall) await this.#reply(req.msgId!, req.replyQ!, { result, failure, ending: true }, true);
    this.#o.onHandled?.();
  }

  async #reply(
    msgId: string,
    replyQ: string,
    reply: { result: unknown; failure: string | null; ending: boolean },
    retryMissingQueue: boolean,
  ): Promise<void> {
    const { body, uniqueId } = buildReply(msgId, reply);
    const deadline = Date.now() + (this.#o.replyRetryMs ?? 60_000);
    const ch = await this.#publishChannel(deadline);
    if (!ch) {
      this.#o.log.error({ msg_id: msgId, reply_q: replyQ }, 'no broker connection; reply abandoned');
      return;
    }
    if (retryMissingQueue) this.#expectReturn(uniqueId, { replyQ, deadline, msgId });
    ch.publish('', replyQ, body, { ...PUBLISH_PROPERTIES, mandatory: true });
  }

  /** The broker returned a reply: its queue is gone (yet). Retry every 250 ms until the deadline, as oslo does. */
  #onReturned(msg: ConsumeMessage): void {
    let uniqueId: string | undefined;
    try {
      uniqueId = (JSON.parse(JSON.parse(msg.content.toString('utf8'))['oslo.message']) as { _unique_id?: string })._unique_id;
    } catch {
      return;
    }
    const pending = uniqueId ? (this.#pending.get(uniqueId) ?? this.#pendingOld.get(uniqueId)) : undefined;
    if (!pending || !uniqueId) return; // a call-monitor heartbeat: nothing to retry
    this.#pending.delete(uniqueId);
    this.#pendingOld.delete(uniqueId);
    if (Date.now() >= pending.deadline || this.#stopping) {
      this.#o.log.error({ msg_id: pending.msgId, reply_q: pending.replyQ }, 'reply queue missing; reply abandoned');
      return;
    }
    const body = msg.content;
    setTimeout(() => {
      const ch = this.#publishCh;
      if (!ch) return;
      this.#expectReturn(uniqueId, pending);
      ch.publish('', pending.replyQ, body, { ...PUBLISH_PROPERTIES, mandatory: true });
    }, 250).unref();
  }

  #expectReturn(uniqueId: string, pending: PendingReply): void {
    this.#pending.set(uniqueId, pending);
    this.#rotation ??= setInterval(() => {
      this.#pendingOld = this.#pending;
      this.#pending = new Map();
      if (this.#pendingOld.size === 0 && this.#rotation) {
        clearInterval(this.#rotation);
        this.#rotation = null;
      }
    }, RETURN_WINDOW_MS).unref();
  }

  async #publishChannel(deadline: number): Promise<Channel | null> {
    if (this.#publishCh && this.#o.connection.connected) return this.#publishCh;
    const signal = AbortSignal.timeout(Math.max(0, deadline - Date.now()));
    try {
      await this.#o.connection.whenConnected(signal);
    } catch {
      return null;
    }
    return this.#publishCh;
  }

  /**
   * Stops consuming, waits up to `graceMs` for in-flight requests to finish
   * (their replies still go out), then aborts the rest. Idempotent.
   */
  async stop(graceMs: number): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    const ch = this.#consumeCh;
    for (const tag of this.#consumerTags) {
      try {
        await ch?.cancel(tag);
      } catch {
        // The channel is already gone: nothing is consuming.
      }
    }
    const all = Promise.allSettled([...this.#inflight]);
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
    if ((await Promise.race([all, timer])) === 'timeout') {
      this.#o.log.warn({ inflight: this.#inflight.size }, 'aborting in-flight requests');
      this.#abort.abort(new Error('agent shutting down'));
      await Promise.race([all, new Promise((r) => setTimeout(r, 5_000).unref())]);
    }
    // Closing the channels waits for the broker's close-ok, so every reply
    // published before is on the wire before the connection goes.
    for (const ch of [this.#consumeCh, this.#publishCh]) {
      try {
        await ch?.close();
      } catch {
        // Already closed with the connection.
      }
    }
    this.#consumeCh = this.#publishCh = null;
    if (this.#rotation) clearInterval(this.#rotation);
    this.#rotation = null;
    this.#pending.clear();
    this.#pendingOld.clear();
  }
}
