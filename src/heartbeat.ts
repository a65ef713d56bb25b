/**
 * Status reporting to conductor. Owns one timer: every `checkIntervalMs` it
 * asks the datastore for its real status and sends a heartbeat when the
 * status changed or `reportIntervalMs` has passed since the last one. Nothing
 * is sent before prepare has completed, unless forced (Trove's
 * BaseDbStatus.set_status(status, force)). A chain of setTimeouts rather than
 * setInterval, so a slow probe or a lagging event loop never stacks checks.
 */
import type { OpContext, ServiceStatus, StatusProbe } from './datastore.ts';
import type { Logger } from './log.ts';

export interface HeartbeatSink {
  heartbeat(status: string): Promise<void>;
}

export interface StatusReporterOptions {
  conductor: HeartbeatSink;
  probe: StatusProbe;
  isPrepared: () => boolean;
  /** report_interval in ms (Trove default 30 s). */
  reportIntervalMs: number;
  /** How often the datastore's status is checked for changes, ms (default min(5 s, report interval)). */
  checkIntervalMs?: number;
  log: Logger;
}

export class StatusReporter {
  readonly #o: StatusReporterOptions;
  #timer: NodeJS.Timeout | null = null;
  #last: ServiceStatus | null = null;
  #lastSentAt = 0;
  #running = false;
  #held: { status: ServiceStatus; until: number } | null = null;
  readonly #abort = new AbortController();

  constructor(o: StatusReporterOptions) {
    this.#o = o;
  }

  get lastStatus(): ServiceStatus | null {
    return this.#last;
  }

  /** Sends a heartbeat now if prepare completed or `force` (e.g. 'building', 'failed to spawn'). */
  async report(status: ServiceStatus, force = false): Promise<void> {
    if (!force && !this.#o.isPrepared()) {
      this.#o.log.debug({ status }, 'prepare not completed; heartbeat skipped');
      return;
    }
    this.#last = status;
    this.#lastSentAt = Date.now();
    try {
      await this.#o.conductor.heartbeat(status);
      this.#o.log.debug({ status }, 'heartbeat sent');
    } catch (err) {
      this.#o.log.warn({ err, status }, 'heartbeat failed');
    }
  }

  /**
   * Reports `status` now and in place of the datastore's own until released or
   * `ms` has passed: 'upgrading' while an upgrade restarts the server (Trove
   * polls for healthy and must not see the server's status from before it).
   */
  hold(status: ServiceStatus, ms = Number.POSITIVE_INFINITY): void {
    this.#held = { status, until: Date.now() + ms };
    void this.report(status);
  }

  /**
   * Ends a time-limited hold early (a failure being reported, e.g. a refused
   * upgrade's 'failed to spawn'): a new operation on the server must not have
   * its outcome hidden behind an older failure. An open-ended hold stays.
   */
  endFailureReport(): void {
    if (this.#held && Number.isFinite(this.#held.until)) this.release();
  }

  /** Ends a hold and reports the datastore's own status at once. */
  release(): void {
    this.#held = null;
    void this.#tick(true);
  }

  /** The datastore's own status, or 'unknown' if the check itself failed. */
  async probe(): Promise<ServiceStatus> {
    const ctx: OpContext = { log: this.#o.log, signal: AbortSignal.any([this.#abort.signal, AbortSignal.timeout(30_000)]) };
    try {
      return await this.#o.probe.status(ctx);
    } catch (err) {
      this.#o.log.warn({ err }, 'status check failed');
      return 'unknown';
    }
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule();
  }

  #schedule(): void {
    if (!this.#running) return;
    const every = this.#o.checkIntervalMs ?? Math.min(5_000, this.#o.reportIntervalMs / 2);
    this.#timer = setTimeout(() => void this.#tick().finally(() => this.#schedule()), every);
  }

  async #tick(now = false): Promise<void> {
    if (!this.#o.isPrepared()) return;
    if (this.#held && Date.now() >= this.#held.until) this.#held = null;
    let status = this.#held?.status ?? (await this.probe());
    // A hold that began while the probe ran wins over what the probe saw.
    if (this.#held) status = this.#held.status;
    if (!this.#running) return;
    if (now) {
      await this.report(status);
      return;
    }
    // Timers fire a little early or late: count an interval as elapsed within half a check of it.
    const every = this.#o.checkIntervalMs ?? Math.min(5_000, this.#o.reportIntervalMs / 2);
    const due = Date.now() - this.#lastSentAt + every / 2 >= this.#o.reportIntervalMs;
    if (status !== this.#last || due) await this.report(status);
  }

  /** Stops the timer; with `finalHeartbeat`, reports the current status one last time. Idempotent. */
  async stop(finalHeartbeat: boolean): Promise<void> {
    const wasRunning = this.#running;
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (finalHeartbeat && wasRunning && this.#o.isPrepared()) await this.report(await this.probe());
    this.#abort.abort();
  }
}
