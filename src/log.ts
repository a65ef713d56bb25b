/**
 * The one pino root (built in main.ts) and its redaction rules. Every field
 * that can carry a secret is censored wherever it appears in a log object;
 * free text (error messages, argv) goes through `redactText` first.
 */
import { pino, type Logger, type DestinationStream, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

/** Keys whose values are always secret, at any depth we log. */
export const SECRET_KEYS = [
  'password', 'passwd', '_password', 'root_password', 'new_password', 'admin_password',
  'token', 'auth_token', 'authToken', 'x-auth-token', 'X-Auth-Token',
  'encr_key', 'instance_rpc_encr_key', 'rpcKey', 'backup_encryption_key', 'encryptionKey',
  'secret', 'application_credential_secret', 'transport_url', 'transportUrl',
] as const;

const PATHS: string[] = [];
for (const k of SECRET_KEYS) {
  const p = /^[A-Za-z_$][\w$]*$/.test(k) ? k : `["${k}"]`;
  PATHS.push(p, `*.${p}`, `*.*.${p}`, `*.*.*.${p}`);
}

export const CENSOR = '***';

/**
 * Removes secrets from free text: the password inside a URL's userinfo,
 * `password=...`-style assignments, `-p<pass>` and `IDENTIFIED BY '...'` forms.
 */
export function redactText(text: string): string {
  return text
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@/\s]*@/gi, `$1${CENSOR}@`)
    .replace(/((?:password|passwd|pass|secret|token|key)\s*[=:]\s*)("[^"]*"|'[^']*'|\S+)/gi, `$1${CENSOR}`)
    .replace(/(IDENTIFIED\s+(?:BY|WITH\s+\S+\s+(?:BY|AS))\s+)('[^']*'|"[^"]*")/gi, `$1'${CENSOR}'`)
    .replace(/(PASSWORD\s*\(\s*)('[^']*'|"[^"]*")/gi, `$1'${CENSOR}'`);
}

export interface LogOptions {
  level?: string;
  /** Human-readable single-line output for terminals instead of JSON. */
  pretty?: boolean;
  /** Where to write; default stdout (journald under systemd). */
  destination?: DestinationStream;
  /**
   * Also append JSON lines to this file (oslo.log's log_dir/log_file; published
   * as the SYS guest log 'guest'). Its directory is created; `reopen()` on the
   * returned handle follows a logrotate move.
   */
  file?: string | null | undefined;
}

export interface LogFileHandle {
  reopen(): void;
}

/** The logger and, when it writes a file, the handle to reopen it after rotation. */
export function createLoggerWithFile(opts: LogOptions): { log: Logger; file: LogFileHandle | null } {
  if (!opts.file) return { log: createLogger(opts), file: null };
  const fileDest = pino.destination({ dest: opts.file, mkdir: true, append: true, sync: false });
  const main = opts.destination ?? (opts.pretty ? prettyStream() : pino.destination({ fd: 1, sync: false }));
  const log = createLogger({ ...opts, destination: pino.multistream([{ stream: main, level: 'trace' }, { stream: fileDest, level: 'trace' }]) });
  return { log, file: { reopen: () => fileDest.reopen() } };
}

export function createLogger(opts: LogOptions = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? 'info',
    base: { pid: process.pid },
    redact: { paths: PATHS, censor: CENSOR },
    formatters: { level: (label) => ({ level: label }) },
    hooks: {
      // Error messages and interpolated strings are free text: scrub them too.
      logMethod(args, method) {
        const scrubbed = args.map((a) => (typeof a === 'string' ? redactText(a) : a)) as typeof args;
        method.apply(this, scrubbed);
      },
    },
    serializers: {
      err: (e: unknown) => serializeError(e),
    },
  };
  if (opts.pretty && !opts.destination) {
    return pino(options, prettyStream());
  }
  return pino(options, opts.destination ?? pino.destination({ fd: 1, sync: false }));
}

function serializeError(e: unknown): Record<string, unknown> {
  if (!(e instanceof Error)) return { message: redactText(String(e)) };
  const out: Record<string, unknown> = {
    type: e.name,
    message: redactText(e.message),
  };
  const code = (e as { code?: unknown }).code;
  if (code !== undefined) out['code'] = code;
  if (e.stack) out['stack'] = redactText(e.stack);
  if (e.cause !== undefined) out['cause'] = serializeError(e.cause);
  return out;
}

/** A minimal readable terminal format, so local runs need no extra dependency. */
function prettyStream(): DestinationStream {
  const levels: Record<string, string> = { trace: 'TRC', debug: 'DBG', info: 'INF', warn: 'WRN', error: 'ERR', fatal: 'FTL' };
  return {
    write(line: string) {
      try {
        const o = JSON.parse(line) as Record<string, unknown>;
        const { time, level, msg, pid: _pid, hostname: _h, ...rest } = o;
        const t = new Date(Number(time)).toISOString().slice(11, 23);
        const extra = Object.keys(rest).length ? ' ' + JSON.stringify(rest) : '';
        process.stderr.write(`${t} ${levels[String(level)] ?? String(level)} ${String(msg ?? '')}${extra}\n`);
      } catch {
        process.stderr.write(line);
      }
    },
  };
}
