/**
 * A small oslo.messaging RPC client: what `guestagent call` and the
 * benchmarks use to talk to an agent the way Trove's API does (calls with a
 * reply queue `reply_<uuid>` and an `expiration` of the timeout, casts),
 * encrypting with the instance key when one is given. Open the amqplib
 * connection with `{ noDelay: true }`: with Nagle on, a round trip costs ~40 ms.
 */
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { buildCall, buildCast, parseReply, uuidHex } from './envelope.ts';
import type { SecureCodec } from './secure-codec.ts';
import { PUBLISH_PROPERTIES } from './server.ts';
import { guestContext } from './conductor.ts';

export class RemoteCallError extends Error {
  readonly remoteClass: string;
  readonly remoteModule: string;
  constructor(remoteClass: string, remoteModule: string, message: string) {
    super(message);
    this.name = 'RemoteCallError';
    this.remoteClass = remoteClass;
    this.remoteModule = remoteModule;
  }
}

export class CallTimeoutError extends Error {}

export interface CallOptions {
  version?: string;
  timeoutMs?: number;
  /** Ask the server for call-monitor heartbeats (oslo `_timeout`), seconds. */
  callMonitorTimeoutSec?: number;
  context?: Record<string, unknown>;
}

interface Waiter {
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
  timeoutMs: number;
}

export class RpcClient {
  readonly #model: ChannelModel;
  readonly #exchange: string;
  readonly #codec: SecureCodec | null;
  #ch: Channel | null = null;
  readonly #replyQ = `reply_${uuidHex()}`;
  readonly #waiters = new Map<string, Waiter>();

  constructor(model: ChannelModel, exchange: string, codec: SecureCodec | null) {
    this.#model = model;
    this.#exchange = exchange;
    this.#codec = codec;
  }

  async open(): Promise<void> {
    const ch = await this.#model.createChannel();
    await ch.assertExchange(this.#exchange, 'topic', { durable: false, autoDelete: false });
    await ch.assertQueue(this.#replyQ, { durable: false, autoDelete: false, exclusive: false, arguments: { 'x-expires': 1_800_000 } });
    await ch.consume(this.#replyQ, (m) => m && this.#onReply(m), { noAck: true });
    this.#ch = ch;
  }

  #onReply(m: ConsumeMessage): void {
    const r = parseReply(m.content);
    const w = r.msgId ? this.#waiters.get(r.msgId) : undefined;
    if (!w || !r.msgId) return;
    if (!r.ending) {
      // A call-monitor heartbeat: the call is alive, restart its clock.
      clearTimeout(w.timer);
      w.timer = setTimeout(() => this.#expire(r.msgId!), w.timeoutMs);
      return;
    }
    clearTimeout(w.timer);
    this.#waiters.delete(r.msgId);
    if (r.failure) {
      const f = JSON.parse(r.failure) as { class?: string; module?: string; message?: string };
      w.reject(new RemoteCallError(f.class ?? 'Exception', f.module ?? '', f.message ?? ''));
      return;
    }
    try {
      w.resolve(this.#codec && r.result !== null ? this.#codec.decrypt(r.result) : r.result);
    } catch (e) {
      w.reject(e as Error);
    }
  }

  #expire(msgId: string): void {
    const w = this.#waiters.get(msgId);
    if (!w) return;
    this.#waiters.delete(msgId);
    w.reject(new CallTimeoutError(`Timed out waiting for a reply to message ID ${msgId}`));
  }

  #wire(args: Record<string, unknown>, context: Record<string, unknown>): [Record<string, unknown>, Record<string, unknown>] {
    const c = this.#codec;
    if (!c) return [args, context];
    return [Object.fromEntries(Object.entries(args).map(([k, v]) => [k, c.encrypt(v)])), { context: c.encrypt(context) }];
  }

  call(topic: string, method: string, args: Record<string, unknown>, o: CallOptions = {}): Promise<unknown> {
    const ch = this.#ch;
    if (!ch) throw new Error('client not open');
    const msgId = uuidHex();
    const timeoutMs = o.timeoutMs ?? 60_000;
    const [a, ctx] = this.#wire(args, o.context ?? guestContext());
    let body = buildCall(method, a, o.version ?? '1.0', ctx, msgId, this.#replyQ);
    if (o.callMonitorTimeoutSec) {
      const outer = JSON.parse(body.toString('utf8')) as Record<string, string>;
      const inner = JSON.parse(outer['oslo.message']!) as Record<string, unknown>;
      inner['_timeout'] = o.callMonitorTimeoutSec;
      body = Buffer.from(JSON.stringify({ 'oslo.version': '2.0', 'oslo.message': JSON.stringify(inner) }));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.#expire(msgId), timeoutMs);
      this.#waiters.set(msgId, { resolve, reject, timer, timeoutMs });
      ch.publish(this.#exchange, topic, body, { ...PUBLISH_PROPERTIES, expiration: String(timeoutMs) });
    });
  }

  cast(topic: string, method: string, args: Record<string, unknown>, o: CallOptions = {}): void {
    const ch = this.#ch;
    if (!ch) throw new Error('client not open');
    const [a, ctx] = this.#wire(args, o.context ?? guestContext());
    ch.publish(this.#exchange, topic, buildCast(method, a, o.version ?? '1.0', ctx), { ...PUBLISH_PROPERTIES });
  }

  async close(): Promise<void> {
    for (const [id, w] of this.#waiters) {
      clearTimeout(w.timer);
      w.reject(new Error('client closed'));
      this.#waiters.delete(id);
    }
    try {
      await this.#ch?.deleteQueue(this.#replyQ);
      await this.#ch?.close();
    } catch {
      // Connection already gone.
    }
  }
}
