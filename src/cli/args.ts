/**
 * Command-line parsing for `guestagent` (the daemon) and `guestagent call`.
 * Flags for local runs (--datastore, --guest-id, --transport-url, --rpc-key*)
 * override what the config files say.
 */
import { parseArgs } from 'node:util';

export const USAGE = `Usage:
  guestagent [--config-file FILE]... [--config-dir DIR]... [options]
  guestagent call [--guest-id ID] [options] <method> [json-kwargs]

Daemon options:
  --config-file FILE     oslo.config INI file (repeatable; later files win)
  --config-dir DIR       read DIR/*.conf in sorted order (repeatable)
                         (with neither, /etc/trove/conf.d is read, as Trove's unit does)
  --datastore NAME       local run: mysql | mariadb | postgresql | redis (sets datastore_manager)
  --guest-id ID          guest id (default: guest_id from config; local runs make one up and keep it)
  --transport-url URL    broker (default: transport_url from config, else rabbit://guest:guest@127.0.0.1:5672/)
  --rpc-key-file FILE    instance RPC key read from FILE (also GUESTAGENT_RPC_KEY; --rpc-key KEY works but shows in ps)
  --state-dir DIR        where the agent keeps what it writes (default: /var/lib/guestagent;
                         local runs: $XDG_STATE_HOME/guestagent or ~/.local/state/guestagent)
  --runner KIND          systemd | process (default: systemd; local runs: process)
  --datastore-port N     TCP port of a datastore the agent runs itself (process runner)
  --log-format FMT       json | pretty (default: json; pretty when stderr is a terminal in local runs)
  --log-level LEVEL      debug | info | warn | error (default: info, debug with [DEFAULT] debug = true)
  -h, --help

Call options:
  --cast                 send a cast (no reply)
  --timeout SECONDS      reply timeout (default 60)
  --version V            guest API version to request (default 1.0)
`;

export interface DaemonArgs {
  kind: 'daemon';
  configFiles: string[];
  configDirs: string[];
  sources: Array<{ kind: 'file' | 'dir'; path: string }>;
  datastore: string | null;
  guestId: string | null;
  transportUrl: string | null;
  rpcKey: string | null;
  rpcKeyFile: string | null;
  stateDir: string | null;
  runner: 'systemd' | 'process' | null;
  datastorePort: number | null;
  logFormat: 'json' | 'pretty' | null;
  logLevel: string | null;
}

export interface CallArgs extends Omit<DaemonArgs, 'kind'> {
  kind: 'call';
  method: string;
  kwargs: Record<string, unknown>;
  cast: boolean;
  timeoutSec: number;
  version: string;
}

export class UsageError extends Error {}

const OPTIONS = {
  'config-file': { type: 'string', multiple: true },
  'config-dir': { type: 'string', multiple: true },
  datastore: { type: 'string' },
  'guest-id': { type: 'string' },
  'transport-url': { type: 'string' },
  'rpc-key': { type: 'string' },
  'rpc-key-file': { type: 'string' },
  'state-dir': { type: 'string' },
  runner: { type: 'string' },
  'datastore-port': { type: 'string' },
  'log-format': { type: 'string' },
  'log-level': { type: 'string' },
  cast: { type: 'boolean' },
  timeout: { type: 'string' },
  version: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export function parseCommandLine(argv: string[]): DaemonArgs | CallArgs | { kind: 'help' } {
  const { values, positionals, tokens } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, tokens: true });
  if (values.help) return { kind: 'help' };
  const sources: DaemonArgs['sources'] = [];
  for (const t of tokens) {
    if (t.kind === 'option' && (t.name === 'config-file' || t.name === 'config-dir') && t.value !== undefined) {
      sources.push({ kind: t.name === 'config-file' ? 'file' : 'dir', path: t.value });
    }
  }
  const runner = values.runner ?? null;
  if (runner !== null && runner !== 'systemd' && runner !== 'process') throw new UsageError(`--runner must be systemd or process, not ${runner}`);
  const logFormat = values['log-format'] ?? null;
  if (logFormat !== null && logFormat !== 'json' && logFormat !== 'pretty') throw new UsageError('--log-format must be json or pretty');
  const portText = values['datastore-port'];
  const port = portText === undefined ? null : Number(portText);
  if (port !== null && (!Number.isInteger(port) || port < 1 || port > 65535)) throw new UsageError(`--datastore-port must be a TCP port, not ${portText}`);
  const common = {
    configFiles: values['config-file'] ?? [],
    configDirs: values['config-dir'] ?? [],
    sources,
    datastore: values.datastore ?? null,
    guestId: values['guest-id'] ?? null,
    transportUrl: values['transport-url'] ?? null,
    rpcKey: values['rpc-key'] ?? null,
    rpcKeyFile: values['rpc-key-file'] ?? null,
    stateDir: values['state-dir'] ?? null,
    runner,
    datastorePort: port,
    logFormat,
    logLevel: values['log-level'] ?? null,
  } satisfies Omit<DaemonArgs, 'kind'>;
  if (positionals[0] === 'call') {
    const method = positionals[1];
    if (!method) throw new UsageError('guestagent call needs a method name');
    let kwargs: unknown = {};
    if (positionals[2] !== undefined) {
      try {
        kwargs = JSON.parse(positionals[2]);
      } catch {
        throw new UsageError('json-kwargs must be a JSON object, e.g. \'{"limit": 10}\'');
      }
    }
    if (typeof kwargs !== 'object' || kwargs === null || Array.isArray(kwargs)) throw new UsageError('json-kwargs must be a JSON object');
    const timeoutSec = values.timeout === undefined ? 60 : Number(values.timeout);
    if (!(timeoutSec > 0)) throw new UsageError('--timeout must be a positive number of seconds');
    return { kind: 'call', ...common, method, kwargs: kwargs as Record<string, unknown>, cast: values.cast ?? false, timeoutSec, version: values.version ?? '1.0' };
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument: ${positionals[0]}`);
  return { kind: 'daemon', ...common };
}
