/**
 * How the agent runs a database server: `systemd` (the distribution's unit,
 * in real guests) or `process` (a child the agent starts and supervises, for
 * local runs and tests). Datastores talk to this interface only.
 */
import type { OpContext } from '../datastore.ts';

export interface ServiceRunner {
  readonly kind: 'systemd' | 'process';
  start(ctx: OpContext): Promise<void>;
  /** Stops the server; with `disableOnBoot`, it does not come back on reboot. */
  stop(ctx: OpContext, opts?: { disableOnBoot?: boolean }): Promise<void>;
  restart(ctx: OpContext): Promise<void>;
  /** What the runner knows of the server process: running, stopped on purpose, or died. */
  state(): 'running' | 'stopped' | 'crashed' | 'unknown';
  /** Releases what the runner holds (a process runner stops its child). */
  close(): Promise<void>;
}
