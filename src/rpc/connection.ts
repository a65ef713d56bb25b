/**
 * One AMQP connection that fails over between the transport_url's hosts and
 * comes back after the broker goes away, re-running every registered setup
 * hook (declarations, consumers) on each new connection, as kombu's ensure()
 * and oslo's reconnect path do. Backoff follows oslo: the first retry after
 * kombu_reconnect_delay, then rabbit_retry_interval growing by
 * rabbit_retry_backoff up to rabbit_interval_max, hosts tried round-robin.
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import amqplib from 'amqplib';
import type { ChannelModel } from 'amqplib';
import type { Logger } from '../log.ts';

export interface BrokerHost {
  host: string;
  port: number;
  username: string | null;
  password: string | null;
}

export interface ConnectionOptions {
  hosts: BrokerHost[];
  virtualHost: string;
  /** AMQP heartbeat in seconds (oslo heartbeat_timeout_threshold); 0 disables. */
  heartbeatSec: number;
  /** First reconnect delay, ms (oslo kombu_reconnect_delay, 1 s). */
  reconnectDelayMs: number;
  /** Retry interval and its growth, ms (rabbit_retry_interval 1 s, rabbit_retry_backoff 2 s). */
  retryIntervalMs: number;
  retryBackoffMs: number;
  /** Cap on the retry interval, ms (rabbit_interval_max 30 s). */
  intervalMaxMs: number;
  tls: null | { caFile: string | null; certFile: string | null; keyFile: string | null; version: string | null };
  log: Logger;
  /** Injectable for tests. */
  connect?: (url: amqplib.Options.Connect, socketOptions: Record<string, unknown>) => Promise<ChannelModel>;
}

export type SetupHook = (model: ChannelModel) => Promise<void>;

export class BrokerConnection extends EventEmitter {
  #opts: ConnectionOptions;
  #model: ChannelModel | null = null;
  #hooks: SetupHook[] = [];
  #closing = false;
  #hostIndex = 0;
  #loop: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  #ready: Array<(m: ChannelModel) => void> = [];

  constructor(opts: ConnectionOptions) {
    super();
    if (opts.hosts.length === 0) throw new Error('no broker hosts');
    this.#opts = opts;
  }

  /** Registers a hook run on every (re)connection, in registration order. */
  onConnect(hook: SetupHook): void {
    this.#hooks.push(hook);
    if (this.#model) void hook(this.#model).catch((e: unknown) => this.#opts.log.error({ err: e }, 'setup hook failed'));
  }

  get connected(): boolean {
    return this.#model !== null;
  }

  /** Resolves with the live connection, waiting for a reconnect if needed. */
  whenConnected(signal?: AbortSignal): Promise<ChannelModel> {
    if (this.#model) return Promise.resolve(this.#model);
    return new Promise((resolve, reject) => {
      const onAbort = (): void => reject(signal?.reason ?? new Error('aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#ready.push((m) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(m);
      });
    });
  }

  /** Starts the connect loop; resolves once the first connection and its hooks are up. */
  async start(): Promise<void> {
    if (!this.#loop) this.#loop = this.#run();
    await this.whenConnected();
  }

  async #run(): Promise<void> {
    let attempt = 0;
    while (!this.#closing) {
      const host = this.#opts.hosts[this.#hostIndex % this.#opts.hosts.length]!;
      try {
        const model = await this.#connectTo(host);
        attempt = 0;
        const closed = new Promise<Error | undefined>((resolve) => {
          model.once('close', (err?: Error) => resolve(err));
          model.on('error', (err: Error) => this.#opts.log.warn({ err }, 'broker connection error'));
        });
        for (const hook of this.#hooks) await hook(model);
        this.#model = model;
        this.#opts.log.info({ host: host.host, port: host.port }, 'connected to broker');
        this.emit('connected');
        for (const r of this.#ready.splice(0)) r(model);
        const err = await closed;
        this.#model = null;
        if (this.#closing) break;
        this.#opts.log.warn({ err }, 'broker connection lost; reconnecting');
        this.emit('disconnected');
      } catch (err) {
        this.#model = null;
        if (this.#closing) break;
        this.#opts.log.warn({ err, host: host.host, port: host.port, attempt }, 'broker connection failed');
        this.#hostIndex++;
      }
      attempt++;
      await this.#sleep(this.#delay(attempt));
    }
  }

  #delay(attempt: number): number {
    const o = this.#opts;
    if (attempt <= 1) return o.reconnectDelayMs;
    return Math.min(o.retryIntervalMs + o.retryBackoffMs * (attempt - 2), o.intervalMaxMs);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.#wake = null;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  async #connectTo(host: BrokerHost): Promise<ChannelModel> {
    const o = this.#opts;
    // amqplib leaves Nagle on by default: with delayed ACKs every round trip would cost ~40 ms.
    const socketOptions: Record<string, unknown> = { timeout: 10_000, noDelay: true };
    if (o.tls) {
      if (o.tls.caFile) socketOptions['ca'] = [readFileSync(o.tls.caFile)];
      if (o.tls.certFile) socketOptions['cert'] = readFileSync(o.tls.certFile);
      if (o.tls.keyFile) socketOptions['key'] = readFileSync(o.tls.keyFile);
      socketOptions['servername'] = host.host;
      const v = tlsVersion(o.tls.version);
      if (v) {
        socketOptions['minVersion'] = v;
        socketOptions['maxVersion'] = v;
      }
    }
    const connect = o.connect ?? ((url, so) => amqplib.connect(url, so));
    return connect(
      {
        protocol: o.tls ? 'amqps' : 'amqp',
        hostname: host.host,
        port: host.port,
        username: host.username ?? 'guest',
        password: host.password ?? 'guest',
        vhost: o.virtualHost,
        heartbeat: o.heartbeatSec,
        locale: 'en_US',
        frameMax: 0,
      },
      socketOptions,
    );
  }

  /** Stops reconnecting and closes the connection. Idempotent. */
  async close(): Promise<void> {
    this.#closing = true;
    this.#wake?.();
    const m = this.#model;
    this.#model = null;
    if (m) {
      try {
        await m.close();
      } catch {
        // Already gone: nothing to release.
      }
    }
    await this.#loop?.catch(() => {});
  }
}

function tlsVersion(v: string | null): 'TLSv1.2' | 'TLSv1.3' | null {
  if (!v) return null;
  const s = v.toLowerCase().replace(/[^0-9a-z.]/g, '');
  if (s.includes('1.3') || s.includes('13')) return 'TLSv1.3';
  if (s.includes('1.2') || s.includes('12')) return 'TLSv1.2';
  return null;
}
