/**
 * The agent's lifecycle as an explicit state machine:
 * new → starting → running → stopping → stopped. start() brings the
 * datastore back (a process runner restarts a server an earlier run
 * prepared), then consumes RPC and starts heartbeats; stop() is idempotent
 * and runs every step in its own try/catch in this order: stop consuming →
 * finish or abort in-flight calls → final heartbeat → datastore close →
 * AMQP close.
 */
import type { Datastore } from './datastore.ts';
import type { StatusReporter } from './heartbeat.ts';
import type { Logger } from './log.ts';
import type { PrepareMarkers } from './markers.ts';
import type { BrokerConnection } from './rpc/connection.ts';
import type { RpcServer } from './rpc/server.ts';

export type AgentState = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

export interface AgentParts {
  connection: BrokerConnection;
  server: RpcServer;
  reporter: StatusReporter;
  /** Closed after the final heartbeat, before the connection. */
  conductor: { close(): Promise<void> };
  datastore: Datastore;
  markers: PrepareMarkers;
  log: Logger;
  /** How long in-flight calls may run on after a stop request before they are aborted, ms. */
  graceMs: number;
}

export class Agent {
  readonly #p: AgentParts;
  #state: AgentState = 'new';
  #stopped: Promise<void> | null = null;
  readonly #abort = new AbortController();

  constructor(p: AgentParts) {
    this.#p = p;
  }

  get state(): AgentState {
    return this.#state;
  }

  /** Some RPC request is being handled. */
  get busy(): boolean {
    return this.#p.server.inflight > 0;
  }

  async start(): Promise<void> {
    if (this.#state !== 'new') throw new Error(`agent cannot start from state ${this.#state}`);
    this.#state = 'starting';
    const { datastore, markers, server, connection, reporter, log } = this.#p;
    const ctx = { log, signal: this.#abort.signal };
    // Read the markers before consuming: a prepare waiting in the queue starts at once.
    const completed = markers.completed;
    const interrupted = markers.started && !completed;
    try {
      await datastore.lifecycle.resume?.(completed, ctx);
    } catch (err) {
      // The agent still serves RPC: the status reports the datastore as it is.
      log.error({ err }, 'could not bring the datastore back up');
    }
    server.start();
    await connection.start();
    if (this.#state !== 'starting') return;
    this.#state = 'running';
    reporter.start();
    if (completed) {
      void reporter.probe().then((s) => reporter.report(s));
    } else if (interrupted) {
      log.error('an earlier prepare did not complete; reporting failed to spawn');
      void reporter.report('failed to spawn', true);
    }
  }

  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<void> {
    this.#state = 'stopping';
    const { server, reporter, conductor, datastore, connection, log, graceMs } = this.#p;
    const step = async (name: string, fn: () => Promise<void>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        log.warn({ err, step: name }, 'shutdown step failed');
      }
    };
    await step('rpc', () => server.stop(graceMs));
    await step('heartbeat', () => reporter.stop(true));
    await step('conductor', () => conductor.close());
    this.#abort.abort();
    await step('datastore', () => datastore.lifecycle.close());
    await step('broker', () => connection.close());
    this.#state = 'stopped';
    log.info('agent stopped');
  }
}
