/**
 * The one way the agent runs a program: an argv array (never a command
 * string, never a shell), cancellable through an AbortSignal, with secrets
 * passed through stdin, env or files, never on argv. Failure becomes one typed
 * ProcessError carrying the exit code or signal and the redacted stderr tail.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { readFileSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import type { ResultPromise } from 'execa';
import { ProcessError, AbortedError } from '../errors.ts';
import { redactText, type Logger } from '../log.ts';

export interface ExecOptions {
  signal?: AbortSignal | undefined;
  /** Written to the child's stdin, then closed. Use it for passwords and keys. */
  input?: string | Buffer | undefined;
  /** Extra environment (merged over the agent's). */
  env?: Record<string, string | undefined> | undefined;
  cwd?: string | undefined;
  /** Kill after this many ms (SIGTERM, then SIGKILL after `killGraceMs`). */
  timeoutMs?: number | undefined;
  /** Grace between SIGTERM and SIGKILL on cancel or timeout. Default 5000 ms. */
  killGraceMs?: number | undefined;
  /** Run as this uid/gid (e.g. the database's system user). */
  uid?: number | undefined;
  gid?: number | undefined;
  /** Exit codes that count as success. Default [0]. */
  okExitCodes?: number[] | undefined;
  log?: Logger | undefined;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** What a component needs to run programs; tests pass a fake. */
export type Exec = (file: string, args: readonly string[], opts?: ExecOptions) => Promise<ExecResult>;

const TAIL = 2000;

// execa and its dependencies take ~100 ms to load, a third of the agent's time to
// its first answer, and most RPCs never run a program: loaded on first use.
let execaModule: Promise<typeof import('execa')> | undefined;
const loadExeca = () => (execaModule ??= import('execa'));

export function describeCommand(file: string, args: readonly string[]): string {
  return redactText([file, ...args].join(' '));
}

/** Runs a program to completion and returns its output; throws ProcessError on failure. */
export const exec: Exec = async (file, args, opts = {}) => {
  const command = describeCommand(file, args);
  opts.log?.debug({ command }, 'exec');
  if (opts.signal?.aborted) throw new AbortedError(`not started: ${command}`);
  const okCodes = opts.okExitCodes ?? [0];
  const { execa } = await loadExeca();
  const child = execa(file, args, {
    cancelSignal: opts.signal,
    forceKillAfterDelay: opts.killGraceMs ?? 5000,
    timeout: opts.timeoutMs,
    input: opts.input,
    stdin: opts.input === undefined ? 'ignore' : 'pipe',
    env: opts.env,
    extendEnv: true,
    cwd: opts.cwd,
    uid: opts.uid,
    gid: opts.gid,
    reject: false,
    stripFinalNewline: false,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const r = await child;
  const exitCode = r.exitCode ?? -1;
  if (r.isCanceled || (opts.signal?.aborted ?? false)) {
    throw new AbortedError(`aborted: ${command}`);
  }
  if (r.failed && (r.exitCode === undefined || !okCodes.includes(r.exitCode) || r.timedOut || r.signal)) {
    throw processError(command, r.exitCode, r.signal, failureOutput(r), r.timedOut, r.cause);
  }
  if (!okCodes.includes(exitCode)) {
    throw processError(command, exitCode, undefined, failureOutput(r), false, undefined);
  }
  return { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), exitCode };
};

/**
 * What a failed program said: its stderr, else its stdout (shell scripts such as
 * mariadb-install-db echo their reasons to stdout and exit 1 with an empty stderr).
 */
function failureOutput(r: { stdout?: unknown; stderr?: unknown }): string {
  const err = String(r.stderr ?? '');
  return err.trim() !== '' ? err : String(r.stdout ?? '');
}

export function processError(
  command: string,
  exitCode: number | undefined,
  signal: string | undefined,
  stderr: string,
  timedOut: boolean,
  cause: unknown,
): ProcessError {
  const stderrTail = redactText(stderr.slice(-TAIL)).trim();
  const how = timedOut ? 'timed out' : signal ? `was killed by ${signal}` : `exited with code ${exitCode}`;
  const first = command.split(' ')[0] ?? command;
  const msg = `${first} ${how}${stderrTail ? `: ${lastLines(stderrTail, 3)}` : ''}`;
  return new ProcessError(msg, { command, exitCode, signal, stderrTail }, { cause });
}

function lastLines(s: string, n: number): string {
  return s.split('\n').filter((l) => l.trim() !== '').slice(-n).join(' | ');
}

export interface SpawnOptions extends Omit<ExecOptions, 'input' | 'okExitCodes'> {
  /**
   * stdin of the child: 'ignore', 'pipe' (caller writes), or another child's stdout pipe, which
   * the child then reads itself (the caller closes its own copy once both are spawned).
   */
  stdin?: 'ignore' | 'pipe' | Readable | undefined;
  /** stdout of the child, or another child's stdin pipe, which it then writes itself (as for stdin). */
  stdout?: 'pipe' | 'ignore' | 'inherit' | Writable | undefined;
  /**
   * Called with each complete stderr line (no newline, unredacted: never log
   * it as is). Backup tools report results there (e.g. mariabackup's LSN).
   */
  onStderrLine?: ((line: string) => void) | undefined;
  /** Bytes of stderr kept for the error message and `stderrTail()`. Default 64 KiB. */
  stderrTailBytes?: number | undefined;
}

export interface Spawned {
  child: ResultPromise;
  /** Resolves on exit 0; rejects with ProcessError (or AbortedError when we killed it). */
  done: Promise<void>;
  /** Redacted command line, for logs. */
  command: string;
  /** The last `stderrTailBytes` of stderr so far (unredacted). */
  stderrTail: () => string;
}

/**
 * Starts a long-running or streaming child (a backup tool, a supervised
 * server). The caller consumes `child.stdout` / writes `child.stdin`; awaiting
 * `done` resolves on exit 0 and rejects with ProcessError otherwise.
 * stderr is not buffered whole: backup tools can write megabytes of progress
 * there, and execa would kill a child exceeding maxBuffer. Only a bounded tail
 * is kept, and lines are handed to `onStderrLine`.
 */
export async function spawnStreaming(file: string, args: readonly string[], opts: SpawnOptions = {}): Promise<Spawned> {
  const command = describeCommand(file, args);
  const { execa } = await loadExeca();
  opts.log?.debug({ command }, 'spawn');
  const child = execa(file, args, {
    cancelSignal: opts.signal,
    forceKillAfterDelay: opts.killGraceMs ?? 5000,
    timeout: opts.timeoutMs,
    env: opts.env,
    extendEnv: true,
    cwd: opts.cwd,
    uid: opts.uid,
    gid: opts.gid,
    stdin: opts.stdin ?? 'ignore',
    stdout: opts.stdout ?? 'pipe',
    stderr: 'pipe',
    buffer: false,
    reject: false,
    encoding: 'buffer',
  });
  const tailMax = opts.stderrTailBytes ?? 64 * 1024;
  let tail = Buffer.alloc(0);
  let partial = '';
  const onLine = opts.onStderrLine;
  child.stderr?.on('data', (d: Buffer) => {
    tail = tail.length + d.length <= tailMax ? Buffer.concat([tail, d]) : Buffer.concat([tail, d]).subarray(-tailMax);
    if (onLine) {
      const text = partial + d.toString('utf8');
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      if (partial.length > tailMax) partial = partial.slice(-tailMax);
      for (const l of lines) onLine(l.replace(/\r$/, ''));
    }
  });
  const stderrDone = new Promise<void>((resolve) => {
    if (!child.stderr) return resolve();
    child.stderr.once('close', () => resolve());
    child.stderr.once('end', () => resolve());
  });
  const done = child.then(async (r) => {
    // A grandchild may hold stderr open after the child exits: do not wait for it forever.
    await Promise.race([stderrDone, delay(1000, undefined, { ref: false })]);
    if (onLine && partial !== '') {
      onLine(partial);
      partial = '';
    }
    // Only a child we actually killed counts as aborted: one that failed on its
    // own keeps its ProcessError even if the caller aborted in reaction to it.
    if (r.isCanceled || ((opts.signal?.aborted ?? false) && r.exitCode === undefined && !r.signal)) {
      throw new AbortedError(`aborted: ${command}`);
    }
    // A pipe handed to the child belongs to another child too: that one may close it first
    // (tar exits at its end-of-archive blocks without reading to EOF) and execa then reports
    // the stream's premature close, though this child exited 0. The exit status decides.
    const handedOff = typeof opts.stdin === 'object' || typeof opts.stdout === 'object';
    const closedUnder = handedOff && r.exitCode === 0 && !r.signal && !r.timedOut && (r.cause as { code?: unknown } | undefined)?.code === 'ERR_STREAM_PREMATURE_CLOSE';
    if ((r.failed && !closedUnder) || r.exitCode !== 0) {
      throw processError(command, r.exitCode, r.signal, tail.toString('utf8'), r.timedOut, r.cause);
    }
  });
  // Callers may never await `done` when another stage fails first; keep it from
  // becoming an unhandled rejection while still letting them await it.
  done.catch(() => {});
  return { child, done, command, stderrTail: () => tail.toString('utf8') };
}

/** Bytes a process has read so far (Linux's /proc/<pid>/io `rchar`), or null when Linux does not say. */
export function bytesRead(pid: number): number | null {
  try {
    const m = /^rchar: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}
