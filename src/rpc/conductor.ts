/**
 * The guest's client of Trove's conductor (trove/conductor/api.py with
 * ConductorGuestSerializer): casts to `control_exchange` with routing key
 * `conductor_queue`, version 1.0. With an instance key every argument value
 * is the JSON string `{"entity": <encrypted>, "csz-instance-id": <guest_id>}`
 * and the context travels encrypted as `_context_context` next to a clear
 * `_context_csz-instance-id`, which the conductor uses to look the key up.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../log.ts';
import { buildCast } from './envelope.ts';
import { pyJson, type SecureCodec } from './secure-codec.ts';
import { PUBLISH_PROPERTIES } from './server.ts';

/** The part of a broker connection a cast needs (BrokerConnection; a fake in unit tests). */
export interface CastConnection {
  whenConnected(signal?: AbortSignal): Promise<{
    createChannel(): Promise<{
      assertExchange(name: string, type: string, o: { durable: boolean; autoDelete: boolean }): Promise<unknown>;
      publish(exchange: string, routingKey: string, body: Buffer, o: Record<string, unknown>): boolean;
      close(): Promise<void>;
      once(event: 'close', fn: () => void): unknown;
      on(event: 'error', fn: (err: Error) => void): unknown;
    }>;
  }>;
}

export interface ConductorOptions {
  connection: CastConnection;
  /** control_exchange (default 'trove'). */
  exchange: string;
  /** conductor_queue (default 'trove-conductor'). */
  topic: string;
  guestId: string;
  codec: SecureCodec | null;
  /** The topic exchange's properties, as the RPC server declares it. */
  exchangeDurable: boolean;
  exchangeAutoDelete: boolean;
  log: Logger;
  /** How long a cast waits for a broker connection before failing, ms. */
  connectWaitMs?: number;
  /** Clock in seconds since the epoch (injectable for tests). */
  now?: () => number;
}

export const CONDUCTOR_API_VERSION = '1.0';

/** An empty TroveContext().to_dict(), what the guest sends with its own casts. */
export function guestContext(): Record<string, unknown> {
  return {
    user: null,
    project_id: null,
    system_scope: null,
    project: null,
    domain: null,
    user_domain: null,
    project_domain: null,
    is_admin: false,
    read_only: false,
    show_deleted: false,
    auth_token: null,
    request_id: `req-${randomUUID()}`,
    global_request_id: null,
    resource_uuid: null,
    roles: [],
    user_identity: '- - - - -',
    is_admin_project: true,
    limit: null,
    marker: null,
    service_catalog: null,
  };
}

export class ConductorClient {
  readonly #o: ConductorOptions;
  #lastSent = 0;
  #queue: Promise<void> = Promise.resolve();
  #ch: { model: unknown; ch: Awaited<ReturnType<Awaited<ReturnType<CastConnection['whenConnected']>>['createChannel']>> } | null = null;

  constructor(o: ConductorOptions) {
    this.#o = o;
  }

  /**
   * Epoch seconds with microseconds, strictly increasing: the conductor drops
   * a heartbeat whose `sent` is not newer than the last one it saw.
   */
  #sent(): number {
    const now = this.#o.now?.() ?? (performance.timeOrigin + performance.now()) / 1000;
    const s = Math.max(Math.round(now * 1e6) / 1e6, Math.round((this.#lastSent + 1e-6) * 1e6) / 1e6);
    this.#lastSent = s;
    return s;
  }

  heartbeat(serviceStatus: string): Promise<void> {
    return this.#cast('heartbeat', {
      instance_id: this.#o.guestId,
      sent: this.#sent(),
      payload: { service_status: serviceStatus },
    });
  }

  /** update_backup(instance_id, backup_id, sent, **fields): state, size, checksum, location, success, ... */
  updateBackup(backupId: string, fields: Record<string, unknown>): Promise<void> {
    return this.#cast('update_backup', { instance_id: this.#o.guestId, backup_id: backupId, sent: this.#sent(), ...fields });
  }

  reportRoot(): Promise<void> {
    return this.#cast('report_root', { instance_id: this.#o.guestId });
  }

  notifyEnd(serializedNotification: Record<string, unknown>, notificationArgs: Record<string, unknown>): Promise<void> {
    return this.#cast('notify_end', { serialized_notification: serializedNotification, notification_args: notificationArgs });
  }

  notifyExcInfo(serializedNotification: Record<string, unknown>, message: string, exception: string[]): Promise<void> {
    return this.#cast('notify_exc_info', {
      serialized_notification: { ...serializedNotification, instance_id: this.#o.guestId },
      message,
      exception,
    });
  }

  /** Waits for queued casts, then closes the cast channel (its close-ok means they were sent). */
  async close(): Promise<void> {
    await this.#queue;
    const c = this.#ch;
    this.#ch = null;
    await c?.ch.close().catch(() => {});
  }

  /** The cast channel of the current connection, (re)opened after a reconnect. */
  async #channel() {
    const o = this.#o;
    const model = await o.connection.whenConnected(AbortSignal.timeout(o.connectWaitMs ?? 60_000));
    if (this.#ch && this.#ch.model === model) return this.#ch.ch;
    const ch = await model.createChannel();
    ch.on('error', (err) => o.log.warn({ err }, 'conductor channel error'));
    ch.once('close', () => {
      if (this.#ch?.ch === ch) this.#ch = null;
    });
    await ch.assertExchange(o.exchange, 'topic', { durable: o.exchangeDurable, autoDelete: o.exchangeAutoDelete });
    this.#ch = { model, ch };
    return ch;
  }

  async #cast(method: string, args: Record<string, unknown>): Promise<void> {
    const o = this.#o;
    const ctx = guestContext();
    let wireArgs: Record<string, unknown> = args;
    let wireCtx: Record<string, unknown> = ctx;
    if (o.codec) {
      const codec = o.codec;
      wireArgs = Object.fromEntries(
        Object.entries(args).map(([k, v]) => [k, pyJson({ entity: codec.encrypt(v), 'csz-instance-id': o.guestId })]),
      );
      wireCtx = { context: codec.encrypt(ctx), 'csz-instance-id': o.guestId };
    }
    const body = buildCast(method, wireArgs, CONDUCTOR_API_VERSION, wireCtx);
    // One channel, one cast at a time: conductor sees casts in the order they were made.
    const send = this.#queue.then(async () => {
      const ch = await this.#channel();
      ch.publish(o.exchange, o.topic, body, { ...PUBLISH_PROPERTIES });
      o.log.debug({ method, request_id: ctx['request_id'] }, 'cast to conductor');
    });
    this.#queue = send.catch(() => {});
    return send;
  }
}
