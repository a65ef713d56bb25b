/**
 * Config pipeline: files/dirs/env (raw) → Trove defaults → validate → frozen
 * AgentConfig. Sources are read in command-line order as oslo's argparse
 * actions do: each --config-file is parsed when met, each --config-dir parses
 * its `*.conf` files in sorted order at that point; later sources win.
 * Options not in Trove's table are ignored, as oslo ignores unregistered keys.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../errors.ts';
import { parseIni, type IniFile } from './ini.ts';
import { TROVE_OPTIONS } from './options.ts';
import { Resolver } from './resolve.ts';
import { deepFreeze, type OptionTable } from './schema.ts';
import { parseTransportUrl, type TransportUrl } from './transport-url.ts';
import type { OptionValue } from './types.ts';

export type { BrokerHost, TransportUrl } from './transport-url.ts';

/** [oslo_messaging_rabbit], durations normalised to ms. */
export interface RabbitOptions {
  /** heartbeat_timeout_threshold, seconds; 0 disables heartbeats. Default 60. */
  heartbeatTimeoutThresholdSec: number;
  /** heartbeat_rate: heartbeat checks per threshold period. Default 2. */
  heartbeatRate: number;
  /** kombu_reconnect_delay, ms (oslo: float seconds 0..4.5). Default 1000. */
  kombuReconnectDelayMs: number;
  /** kombu_missing_consumer_retry_timeout, seconds. Default 60. */
  kombuMissingConsumerRetryTimeoutSec: number;
  /** kombu_failover_strategy: 'round-robin' | 'shuffle'. Default 'round-robin'. */
  kombuFailoverStrategy: string;
  /** rabbit_login_method. Default 'AMQPLAIN'. */
  loginMethod: string;
  /** rabbit_retry_interval, ms. Default 1000. */
  retryIntervalMs: number;
  /** rabbit_retry_backoff, ms. Default 2000. */
  retryBackoffMs: number;
  /** rabbit_interval_max, ms. Default 30000. */
  intervalMaxMs: number;
  /** amqp_durable_queues. Default false. */
  amqpDurableQueues: boolean;
  /** amqp_auto_delete. Default false. */
  amqpAutoDelete: boolean;
  /** rabbit_ha_queues. Default false. */
  haQueues: boolean;
  /** rabbit_quorum_queue. Default false. */
  quorumQueue: boolean;
  /** rabbit_quorum_delivery_limit; 0 = unset. Default 0. */
  quorumDeliveryLimit: number;
  /** rabbit_quroum_max_memory_length (oslo's spelling); 0 = unset. Default 0. */
  quorumMaxMemoryLength: number;
  /** rabbit_quroum_max_memory_bytes (oslo's spelling); 0 = unset. Default 0. */
  quorumMaxMemoryBytes: number;
  /** rabbit_transient_queues_ttl, seconds (min 1). Default 1800. */
  transientQueuesTtlSec: number;
  /** rabbit_qos_prefetch_count; 0 = unlimited. Default 0. */
  qosPrefetchCount: number;
  /** null unless [oslo_messaging_rabbit] ssl is true (default false); empty strings become null. */
  ssl: null | { caFile: string | null; certFile: string | null; keyFile: string | null; version: string | null; enforceHostnameVerification: boolean };
  /** direct_mandatory_flag. Default true. */
  directMandatoryFlag: boolean;
  /** enable_cancel_on_failover. Default false. */
  enableCancelOnFailover: boolean;
}

/** Backup options from Trove's [DEFAULT]. */
export interface BackupOptions {
  /** backup_swift_container. Default 'database_backups'. */
  swiftContainer: string;
  /** backup_segment_max_size, bytes. Default 2147483648 (2 GiB). */
  segmentMaxSize: number;
  /** backup_chunk_size, bytes. Default 65536. */
  chunkSize: number;
  /** backup_aes_cbc_key; null when empty (Trove's default ''). Secret. */
  encryptionKey: string | null;
  /** backup_compression (ours): gzip (default, Trove-compatible) or zstd. */
  compression: 'gzip' | 'zstd';
  /** backup_retries (ours): new starts of a backup whose upload Swift broke off. Default 1. */
  retries: number;
  /** backup_use_gzip_compression. Default true. */
  useGzip: boolean;
  /** backup_use_openssl_encryption. Default true. */
  useOpensslEncryption: boolean;
  /** backup_use_snet. Default false. */
  useSnet: boolean;
  /** storage_strategy. Default 'swift'. */
  storageStrategy: string;
  /** storage_namespace. Default 'trove.common.strategies.storage.swift'. */
  storageNamespace: string;
  /** backup_runner (Trove's dotted class name, kept for reference). */
  runner: string | null;
  /** swift_url; null = from the Keystone catalog. Default null. */
  swiftUrl: string | null;
  /** swift_service_type. Default 'object-store'. */
  swiftServiceType: string | null;
}

/** Where the agent finds Swift through Keystone v3: Trove's [service_credentials] plus our application credential. */
export interface KeystoneOptions {
  /** auth_url; null while it is Trove's placeholder default (https://0.0.0.0/identity/v3). */
  authUrl: string | null;
  /** region_name: the object-store endpoint's region. Default 'RegionOne'. */
  regionName: string | null;
  /** application_credential_id / _secret (ours). Both set = used instead of the caller's token. Secret. */
  applicationCredential: { id: string; secret: string } | null;
}

/** Guest log publishing options from Trove's [DEFAULT] (trove/guestagent/guest_log.py). */
export interface GuestLogOptions {
  /** guest_log_container_name. Default 'database_logs'. */
  container: string;
  /** guest_log_limit: bytes per published object. Default 1000000. */
  limit: number;
  /** guest_log_expiry: X-Delete-After of published objects, seconds. Default 2592000. */
  expirySec: number;
  /** The agent's own log file, published as the SYS log 'guest' (log_dir or /var/log/trove/, log_file or trove-guestagent.log). */
  agentLogFile: string;
}

export type DatastoreName = 'mysql' | 'mariadb' | 'postgresql' | 'redis';
export type DatastoreSection = Readonly<Record<string, OptionValue>>;

export interface AgentConfig {
  /** Every file read, in order. */
  files: readonly string[];
  /** guest_id (required). */
  guestId: string;
  /** tenant_id from guest_info.conf (not a Trove-registered option). Default null. */
  tenantId: string | null;
  /** datastore_manager, e.g. 'mysql'. Default null. */
  datastoreManager: string | null;
  /** datastore_version. Default null. */
  datastoreVersion: string | null;
  /** instance_rpc_encr_key; null = unencrypted RPC. Secret. */
  instanceRpcEncrKey: string | null;
  /** transport_url, parsed. Default 'rabbit://' (guest:guest@localhost:5672, vhost '/'). */
  transportUrl: TransportUrl;
  /** control_exchange. Default 'openstack' (oslo's; Trove 18 does not override it). */
  controlExchange: string;
  /** conductor_queue. Default 'trove-conductor'. */
  conductorQueue: string;
  /** report_interval, seconds. Default 30. */
  reportIntervalSec: number;
  /** state_change_wait_time, seconds. Default 180. */
  stateChangeWaitTimeSec: number;
  /** state_change_poll_time, seconds. Default 3. */
  stateChangePollTimeSec: number;
  /** agent_call_low_timeout, seconds. Default 15. */
  agentCallLowTimeoutSec: number;
  /** agent_call_high_timeout, seconds. Default 180. */
  agentCallHighTimeoutSec: number;
  /** usage_timeout, seconds. Default 1800. */
  usageTimeoutSec: number;
  /** rpc_response_timeout, seconds. Default 60. */
  rpcResponseTimeoutSec: number;
  rabbit: RabbitOptions;
  backup: BackupOptions;
  /** [service_credentials]: Keystone for finding Swift. */
  keystone: KeystoneOptions;
  guestLog: GuestLogOptions;
  /** [DEFAULT] module_types: the module drivers Trove lets this guest load (lower case). Default ping, new_relic_license. */
  moduleTypes: string[];
  /** Every datastore group with Trove's defaults applied, typed per oslo type. Keys are oslo option names (snake_case). */
  datastoreSections: Readonly<Record<DatastoreName, DatastoreSection>>;
  /** [DEFAULT] debug. Default false. */
  debug: boolean;
  /** 'debug' when debug is set, else 'info' (oslo.log's default level). */
  logLevel: string;
  /**
   * Where the agent also writes its log, as oslo.log places it: `log_dir/log_file`,
   * `log_file` alone, or `log_dir/trove-guestagent.log`; null (neither set): stdout only.
   */
  logFile: string | null;
}

export interface ConfigSource {
  kind: 'file' | 'dir';
  path: string;
}

export interface LoadOptions {
  /** --config-file values, in order. Used when `sources` is absent (files first, then dirs). */
  configFiles?: string[];
  /** --config-dir values, in order. Used when `sources` is absent. */
  configDirs?: string[];
  /** --config-file and --config-dir in command-line order (wins over configFiles/configDirs). */
  sources?: ConfigSource[];
  /** Environment for OS_<GROUP>__<OPTION>. Default: none (main passes process.env). */
  env?: Record<string, string | undefined>;
}

/** The table with the guest_info.conf key Trove writes but does not register. */
const TABLE: OptionTable = {
  ...TROVE_OPTIONS,
  DEFAULT: {
    ...TROVE_OPTIONS['DEFAULT'],
    tenant_id: { kind: 'str', default: null },
    // Ours, not Trove's: the backup codec (gzip is what Trove's tool writes and reads).
    backup_compression: { kind: 'str', default: 'gzip', choices: ['gzip', 'zstd'] },
    // Ours: how many times a backup whose upload Swift broke off starts again from the beginning.
    backup_retries: { kind: 'int', default: 1 },
  },
  // Ours, not Trove's: the server program (default: Debian's /usr/sbin/mariadbd when installed, else
  // /usr/sbin/mysqld). Its real name says which server it is: mariadbd is MariaDB, anything else MySQL.
  // And where MySQL's mysql, mysqldump and mysqlbinlog are (its logical backups and restores).
  mysql: { ...TROVE_OPTIONS['mysql'], server_binary: { kind: 'str', default: null }, client_bin_dir: { kind: 'str', default: '/usr/bin' } },
  mariadb: { ...TROVE_OPTIONS['mariadb'], server_binary: { kind: 'str', default: null }, client_bin_dir: { kind: 'str', default: '/usr/bin' } },
  service_credentials: {
    ...TROVE_OPTIONS['service_credentials'],
    // Ours, not Trove's (keystoneauth's option names): a Keystone v3
    // application credential the agent reaches Swift with instead of the
    // user's token, for operators who keep user tokens off their guests.
    application_credential_id: { kind: 'str', default: '' },
    application_credential_secret: { kind: 'str', default: '', secret: true },
  },
};

const DATASTORES: readonly DatastoreName[] = ['mysql', 'mariadb', 'postgresql', 'redis'];

/** Read, merge, validate and freeze the configuration. Throws ConfigError. */
/** oslo.log's _get_log_file_path for the binary trove-guestagent. */
function agentLogFile(dir: string | undefined | null, file: string | undefined | null): string | null {
  if (file && dir && !file.startsWith('/')) return `${dir.replace(/\/?$/, '/')}${file}`;
  if (file) return file;
  if (dir) return `${dir.replace(/\/?$/, '/')}trove-guestagent.log`;
  return null;
}

export function loadConfig(opts: LoadOptions): AgentConfig {
  const files = readSources(opts);
  return deepFreeze(build(new Resolver(TABLE, files, opts.env ?? {}), files));
}

/**
 * Every option of every known group ([DEFAULT], [oslo_messaging_rabbit], the
 * datastore groups), typed, as Trove's CONF would return it; frozen. For
 * options AgentConfig does not surface. Unlike loadConfig, guest_id may be
 * missing. Throws ConfigError.
 */
export function loadOptionValues(opts: LoadOptions): Readonly<Record<string, Readonly<Record<string, OptionValue>>>> {
  const r = new Resolver(TABLE, readSources(opts), opts.env ?? {});
  return deepFreeze(
    Object.fromEntries(
      Object.entries(TABLE).map(([group, options]) => [group, Object.fromEntries(Object.keys(options).map((n) => [n, r.get(group, n)]))]),
    ),
  );
}

function readSources(opts: LoadOptions): IniFile[] {
  const sources: ConfigSource[] = opts.sources ?? [
    ...(opts.configFiles ?? []).map((path) => ({ kind: 'file' as const, path })),
    ...(opts.configDirs ?? []).map((path) => ({ kind: 'dir' as const, path })),
  ];
  const files: IniFile[] = [];
  for (const source of sources) {
    const path = expandUser(source.path);
    if (source.kind === 'file') {
      files.push(readIni(path));
      continue;
    }
    let entries: string[];
    try {
      if (!statSync(path).isDirectory()) throw new Error('not a directory');
      entries = readdirSync(path);
    } catch {
      throw new ConfigError(`${path}: failed to read config file directory`, { file: path });
    }
    // glob('*.conf') skips dot-files; sorted() compares code points, as JS sort does for strings.
    for (const name of entries.filter((n) => n.endsWith('.conf') && !n.startsWith('.')).sort()) {
      files.push(readIni(join(path, name)));
    }
  }
  return files;
}

function readIni(path: string): IniFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'config file not found' : code === 'EACCES' ? 'permission denied' : `cannot read (${code ?? 'error'})`;
    throw new ConfigError(`${path}: ${reason}`, { file: path });
  }
  return parseIni(text, path);
}

function expandUser(p: string): string {
  return p === '~' || p.startsWith('~/') ? homedir() + p.slice(1) : p;
}

function build(r: Resolver, files: readonly IniFile[]): AgentConfig {
  const str = (g: string, n: string): string | null => {
    const v = r.get(g, n);
    return v === null ? null : String(v);
  };
  const nonEmpty = (g: string, n: string): string | null => {
    const v = str(g, n);
    return v === '' ? null : v;
  };
  const num = (g: string, n: string): number => {
    const v = r.get(g, n);
    if (typeof v === 'number') return v;
    // A blank integer is None in oslo; Trove code would then fail on arithmetic.
    throw new ConfigError(`${where(r, g, n)}[${g}] ${n}: a number is required`, { section: g, option: n });
  };
  const bool = (g: string, n: string): boolean => r.get(g, n) === true;
  const D = 'DEFAULT';
  const R = 'oslo_messaging_rabbit';
  const S = 'service_credentials';
  const keystone = (): KeystoneOptions => {
    const authUrl = nonEmpty(S, 'auth_url');
    const id = nonEmpty(S, 'application_credential_id');
    const secret = nonEmpty(S, 'application_credential_secret');
    if ((id === null) !== (secret === null)) {
      const missing = id === null ? 'application_credential_id' : 'application_credential_secret';
      throw new ConfigError(`[${S}] ${missing}: required when ${id === null ? 'application_credential_secret' : 'application_credential_id'} is set`, { section: S, option: missing });
    }
    if (id !== null && (authUrl === null || isPlaceholderAuthUrl(authUrl))) {
      throw new ConfigError(`${where(r, S, 'auth_url')}[${S}] auth_url: required (Keystone v3) when an application credential is set`, { section: S, option: 'auth_url' });
    }
    return {
      authUrl: authUrl === null || isPlaceholderAuthUrl(authUrl) ? null : authUrl,
      regionName: nonEmpty(S, 'region_name'),
      applicationCredential: id !== null && secret !== null ? { id, secret } : null,
    };
  };

  const guestId = nonEmpty(D, 'guest_id');
  if (guestId === null) {
    const read = files.length > 0 ? files.map((f) => f.path).join(', ') : 'no config files';
    throw new ConfigError(`[DEFAULT] guest_id: the guest_id parameter is not set (read: ${read}); guest_info.conf is missing or incomplete`, {
      section: D,
      option: 'guest_id',
    });
  }
  const ssl = bool(R, 'ssl');
  const urlOrigin = r.origin(D, 'transport_url');
  const transportUrl = parseTransportUrl(str(D, 'transport_url') ?? 'rabbit://', {
    ...(urlOrigin !== null ? { file: urlOrigin.source } : {}),
    ssl,
  });
  const debug = bool(D, 'debug');
  const datastoreSections = Object.fromEntries(
    DATASTORES.map((ds) => [ds, Object.fromEntries(Object.keys(TABLE[ds] ?? {}).map((n) => [n, r.get(ds, n)]))]),
  ) as Record<DatastoreName, DatastoreSection>;

  return {
    files: files.map((f) => f.path),
    guestId,
    tenantId: nonEmpty(D, 'tenant_id'),
    datastoreManager: nonEmpty(D, 'datastore_manager'),
    datastoreVersion: nonEmpty(D, 'datastore_version'),
    instanceRpcEncrKey: nonEmpty(D, 'instance_rpc_encr_key'),
    transportUrl,
    controlExchange: str(D, 'control_exchange') ?? 'openstack',
    conductorQueue: str(D, 'conductor_queue') ?? 'trove-conductor',
    reportIntervalSec: num(D, 'report_interval'),
    stateChangeWaitTimeSec: num(D, 'state_change_wait_time'),
    stateChangePollTimeSec: num(D, 'state_change_poll_time'),
    agentCallLowTimeoutSec: num(D, 'agent_call_low_timeout'),
    agentCallHighTimeoutSec: num(D, 'agent_call_high_timeout'),
    usageTimeoutSec: num(D, 'usage_timeout'),
    rpcResponseTimeoutSec: num(D, 'rpc_response_timeout'),
    rabbit: {
      heartbeatTimeoutThresholdSec: num(R, 'heartbeat_timeout_threshold'),
      heartbeatRate: num(R, 'heartbeat_rate'),
      kombuReconnectDelayMs: Math.round(num(R, 'kombu_reconnect_delay') * 1000),
      kombuMissingConsumerRetryTimeoutSec: num(R, 'kombu_missing_consumer_retry_timeout'),
      kombuFailoverStrategy: str(R, 'kombu_failover_strategy') ?? 'round-robin',
      loginMethod: str(R, 'rabbit_login_method') ?? 'AMQPLAIN',
      retryIntervalMs: num(R, 'rabbit_retry_interval') * 1000,
      retryBackoffMs: num(R, 'rabbit_retry_backoff') * 1000,
      intervalMaxMs: num(R, 'rabbit_interval_max') * 1000,
      amqpDurableQueues: bool(R, 'amqp_durable_queues'),
      amqpAutoDelete: bool(R, 'amqp_auto_delete'),
      haQueues: bool(R, 'rabbit_ha_queues'),
      quorumQueue: bool(R, 'rabbit_quorum_queue'),
      quorumDeliveryLimit: num(R, 'rabbit_quorum_delivery_limit'),
      quorumMaxMemoryLength: num(R, 'rabbit_quroum_max_memory_length'),
      quorumMaxMemoryBytes: num(R, 'rabbit_quroum_max_memory_bytes'),
      transientQueuesTtlSec: num(R, 'rabbit_transient_queues_ttl'),
      qosPrefetchCount: num(R, 'rabbit_qos_prefetch_count'),
      ssl: ssl
        ? {
            caFile: nonEmpty(R, 'ssl_ca_file'),
            certFile: nonEmpty(R, 'ssl_cert_file'),
            keyFile: nonEmpty(R, 'ssl_key_file'),
            version: nonEmpty(R, 'ssl_version'),
            enforceHostnameVerification: bool(R, 'ssl_enforce_hostname_verification'),
          }
        : null,
      directMandatoryFlag: bool(R, 'direct_mandatory_flag'),
      enableCancelOnFailover: bool(R, 'enable_cancel_on_failover'),
    },
    backup: {
      swiftContainer: str(D, 'backup_swift_container') ?? 'database_backups',
      segmentMaxSize: num(D, 'backup_segment_max_size'),
      chunkSize: num(D, 'backup_chunk_size'),
      encryptionKey: nonEmpty(D, 'backup_aes_cbc_key'),
      compression: str(D, 'backup_compression') === 'zstd' ? 'zstd' : 'gzip',
      retries: Math.max(0, num(D, 'backup_retries')),
      useGzip: bool(D, 'backup_use_gzip_compression'),
      useOpensslEncryption: bool(D, 'backup_use_openssl_encryption'),
      useSnet: bool(D, 'backup_use_snet'),
      storageStrategy: str(D, 'storage_strategy') ?? 'swift',
      storageNamespace: str(D, 'storage_namespace') ?? 'trove.common.strategies.storage.swift',
      runner: nonEmpty(D, 'backup_runner'),
      swiftUrl: nonEmpty(D, 'swift_url'),
      swiftServiceType: nonEmpty(D, 'swift_service_type'),
    },
    keystone: keystone(),
    guestLog: {
      container: str(D, 'guest_log_container_name') ?? 'database_logs',
      limit: num(D, 'guest_log_limit'),
      expirySec: num(D, 'guest_log_expiry'),
      agentLogFile: agentLogFile(nonEmpty(D, 'log_dir'), nonEmpty(D, 'log_file')) ?? '/var/log/trove/trove-guestagent.log',
    },
    logFile: agentLogFile(nonEmpty(D, 'log_dir'), nonEmpty(D, 'log_file')),
    moduleTypes: ((r.get(D, 'module_types') as unknown[] | null) ?? []).map((t) => String(t).trim().toLowerCase()).filter(Boolean),
    datastoreSections,
    debug,
    logLevel: debug ? 'debug' : 'info',
  };
}

/** Trove's default auth_url, https://0.0.0.0/identity/v3, names no Keystone. */
function isPlaceholderAuthUrl(url: string): boolean {
  try {
    return new URL(url).hostname === '0.0.0.0';
  } catch {
    return false;
  }
}

function where(r: Resolver, g: string, n: string): string {
  const o = r.origin(g, n);
  if (o === null) return '';
  return o.line !== undefined ? `${o.source}:${o.line}: ` : `${o.source}: `;
}
