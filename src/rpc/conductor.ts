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

  constructor(o: ConductorOptions) {
    this.#o = o;
  }

  /**
   * Epoch seconds with microseconds, strictly increasing: the conductor drops
   * a heartbeat whose `sent` is not newer than the last one it saw.
   */
  #sent(): number {
    const now = this.#o.now?.() ?? Date.now() / 1000;
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
    const model = await o.connection.whenConnected(AbortSignal.timeout(o.connectWaitMs ?? 60_000));
    const ch = await model.createChannel();
    try {
      await ch.assertExchange(o.exchange, 'topic', { durable: o.exchangeDurable, autoDelete: o.exchangeAutoDelete });
      ch.publish(o.exchange, o.topic, body, { ...PUBLISH_PROPERTIES });
      o.log.debug({ method, request_id: ctx['request_id'] }, 'cast to conductor');
    } finally {
      await ch.close().catch(() => {});
    }
  }
}
