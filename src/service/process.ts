/**
 * The `process` runner: the agent starts the server itself (argv array, no
 * shell), restarts it with backoff if it dies unexpectedly, and stops it with
 * SIGTERM, then SIGKILL after a grace. Output goes to the logger, redacted;
 * its last lines are also kept, for a failed start's explanation (outputSince).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { OpContext } from '../datastore.ts';
import { GuestError } from '../errors.ts';
import { redactText, type Logger } from '../log.ts';
import type { ServiceRunner } from './runner.ts';

export interface ProcessRunnerOptions {
  /** Program and arguments, rebuilt at every start (config may have changed). */
  command: () => { file: string; args: string[]; env?: Record<string, string> };
  /** Resolves once the server accepts work; rejects when it cannot. */
  waitReady: (ctx: OpContext) => Promise<void>;
  log: Logger;
  /** Grace between SIGTERM and SIGKILL, ms (default 60 s: a database flushes on shutdown). */
  stopGraceMs?: number;
  /** Restart delays after unexpected exits, ms (default 1 s doubling to 30 s). */
  restartDelayMs?: number;
  /** Run the server as this user (PostgreSQL refuses to run as root). */
  uid?: number;
  gid?: number;
}

/** How many of the server's last output lines are kept. */
const KEPT_LINES = 50;

export interface ProcessRunner extends ServiceRunner {
  readonly pid: number | null;
  /** How many lines the server has written so far: a mark for outputSince. */
  readonly outputLines: number;
  /** The server's lines (redacted) after the mark, at most the last 50. */
  outputSince(mark: number): string[];
}

export function createProcessRunner(o: ProcessRunnerOptions): ProcessRunner {
  let child: ChildProcess | null = null;
  let wanted = false;
  let crashed = false;
  let delay = o.restartDelayMs ?? 1000;
  let restartTimer: NodeJS.Timeout | null = null;
  let exited: Promise<void> = Promise.resolve();
  const kept: string[] = [];
  let lines = 0;

  const launch = (): ChildProcess => {
    const { file, args, env } = o.command();
    const c = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, uid: o.uid, gid: o.gid });
    for (const stream of [c.stdout, c.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on('line', (l) => {
        const line = redactText(l);
        o.log.info({ server: file }, line);
        kept.push(line);
        if (kept.length > KEPT_LINES) kept.shift();
        lines++;
      });
    }
    exited = new Promise((resolve) => {
      c.once('exit', (code, signal) => {
        if (child === c) child = null;
        if (wanted) {
          crashed = true;
          o.log.error({ code, signal }, 'database server died; restarting');
          restartTimer = setTimeout(() => {
            restartTimer = null;
            if (wanted && !child) child = launch();
          }, delay);
          delay = Math.min(delay * 2, 30_000);
        }
        resolve();
      });
      c.once('error', (err) => {
        o.log.error({ err }, 'database server could not be started');
        resolve();
      });
    });
    return c;
  };

  const stopChild = async (): Promise<void> => {
    wanted = false;
    if (restartTimer) clearTimeout(restartTimer);
    restartTimer = null;
    const c = child;
    if (!c) return;
    c.kill('SIGTERM');
    const killer = setTimeout(() => c.kill('SIGKILL'), o.stopGraceMs ?? 60_000);
    await exited;
    clearTimeout(killer);
    child = null;
  };

  const runner = {
    kind: 'process' as const,
    get pid() {
      return child?.pid ?? null;
    },
    get outputLines() {
      return lines;
    },
    outputSince(mark: number): string[] {
      return kept.slice(Math.max(0, kept.length - (lines - mark)));
    },
    async start(ctx: OpContext) {
      if (child) return;
      wanted = true;
      crashed = false;
      delay = o.restartDelayMs ?? 1000;
      child = launch();
      try {
        await o.waitReady(ctx);
      } catch (err) {
        await stopChild();
        throw err instanceof GuestError ? err : new GuestError(`the database server did not become ready: ${(err as Error).message}`, { cause: err });
      }
    },
    async stop(_ctx: OpContext) {
      await stopChild();
    },
    async restart(ctx: OpContext) {
      await stopChild();
      await runner.start(ctx);
    },
    state(): 'running' | 'stopped' | 'crashed' | 'unknown' {
      if (child) return 'running';
      return crashed ? 'crashed' : 'stopped';
    },
    async close() {
      await stopChild();
    },
  };
  return runner;
}
