/**
 * How the agent runs a database server: `systemd` (the distribution's unit,
 * in real guests) or `process` (a child the agent starts and supervises, for
 * local runs and tests). Datastores talk to this interface only.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import type { OpContext } from '../datastore.ts';
import { GuestError } from '../errors.ts';
import { redactText } from '../log.ts';

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

/**
 * The runner, with a failed start or restart explained: `explain(since)` reads what the server
 * itself said since the attempt began (its error log from the offset `mark()` took), and the
 * error the caller sees (a GuestError) leads with it, the runner's own message in brackets
 * after. "The server exited; see <file>" told an operator where to look; the server's own
 * [ERROR] lines tell them what to fix.
 */
export function explainingStarts<M>(runner: ServiceRunner, mark: () => M, explain: (since: M) => string | null): ServiceRunner {
  const explained = (op: (ctx: OpContext) => Promise<void>) => async (ctx: OpContext) => {
    const since = mark();
    try {
      await op(ctx);
    } catch (err) {
      // Redacted as the agent's log is: the server may quote a setting it refused.
      const why = redactText(explain(since) ?? '');
      if (!why) throw err;
      throw new GuestError(`${why} (${err instanceof Error ? err.message : String(err)})`, { cause: err });
    }
  };
  return {
    kind: runner.kind,
    start: explained((ctx) => runner.start(ctx)),
    restart: explained((ctx) => runner.restart(ctx)),
    stop: (ctx, opts) => runner.stop(ctx, opts),
    state: () => runner.state(),
    close: () => runner.close(),
  };
}

/** A log file's size now: where what is written next begins (0 while there is no file). */
export function fileMark(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** How much of a log after the mark is read: a server that fails to start writes a few lines, not megabytes. */
const SINCE_WINDOW = 64 * 1024;

/** What a log file gained since `mark`: its last 64 KiB at most, all of it when rotated below the mark; '' when unreadable. */
export function fileTextSince(file: string, mark: number): string {
  try {
    const size = statSync(file).size;
    const from = size < mark ? 0 : Math.max(mark, size - SINCE_WINDOW);
    const buf = Buffer.alloc(size - from);
    const fd = openSync(file, 'r');
    try {
      readSync(fd, buf, 0, buf.length, from);
    } finally {
      closeSync(fd);
    }
    return buf.toString('utf8');
  } catch {
    return '';
  }
}
