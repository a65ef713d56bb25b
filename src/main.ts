/**
 * Composition root: the only module that reads argv and the environment,
 * builds the config, the logger and every component, picks the datastore,
 * handles signals and exits.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type AgentConfig } from './config/load.ts';
import { DATASTORES, isDatastoreName } from '../datastores/index.ts';
import { Agent } from './agent.ts';
import { ConfigError } from './errors.ts';
import type { DatastoreFactory } from './datastore.ts';
import { buildMethodTable, GUEST_API_VERSION } from './handlers/table.ts';
import { StatusReporter } from './heartbeat.ts';
import { createLoggerWithFile, type Logger } from './log.ts';
import { PrepareMarkers } from './markers.ts';
import { PrepareService, type VolumePreparer } from './prepare.ts';
import { exec } from './process/exec.ts';
import { createVolumeManager } from './volume/volume-manager.ts';
import { BrokerConnection } from './rpc/connection.ts';
import { ConductorClient } from './rpc/conductor.ts';
import { Dispatcher } from './rpc/dispatcher.ts';
import { createRequestCodec } from './rpc/request-codec.ts';
import { createSecureCodec } from './rpc/secure-codec.ts';
import { RpcServer } from './rpc/server.ts';
import { serverTopology } from './rpc/topology.ts';
import { parseCommandLine, USAGE, UsageError, type CallArgs, type DaemonArgs } from './cli/args.ts';
import { runCall } from './cli/call.ts';
import { filesystemStats } from './volume/stats.ts';
import { createBackupService } from './backup/service.ts';
import { createGuestLogService } from './guestlog.ts';
import { createModuleManager } from './modules.ts';
import { createSdNotifier } from './sd-notify.ts';
import { createIdleGc, exposeGc, FOLLOW_UPS_MS, exposeMinorGc, idleCollector, rssGrowthGate, SPELL_MIN_GROWTH_BYTES, type IdleGc } from './process/idle-gc.ts';
import { createIdlePageout, loadIdleMemory } from './process/idle-memory.ts';

const GUEST_CONF_DIR = '/etc/trove/conf.d';
/** In-flight calls get this long after SIGTERM before they are aborted (systemd TimeoutStopSec must exceed FORCE). */
const GRACE_MS = 20_000;
const FORCE_MS = 40_000;

export interface Settings {
  config: AgentConfig;
  local: boolean;
  stateDir: string;
  rpcKey: string | null;
  runner: 'systemd' | 'process';
  datastorePort: number | null;
}

function localStateDir(env: NodeJS.ProcessEnv): string {
  return join(env['XDG_STATE_HOME'] || join(homedir(), '.local', 'state'), 'guestagent');
}

/** Resolves flags + files + env into one frozen config. Flags win over files through oslo's env source. */
export function resolveSettings(args: DaemonArgs | CallArgs, env: NodeJS.ProcessEnv): Settings {
  const local = args.datastore !== null || args.kind === 'call';
  const stateDir = args.stateDir ?? (local ? localStateDir(env) : '/var/lib/guestagent');
  const overlay: Record<string, string | undefined> = { ...env };
  if (args.datastore !== null) {
    if (!isDatastoreName(args.datastore)) throw new UsageError(`unknown datastore '${args.datastore}' (mysql, mariadb, postgresql, redis)`);
    overlay['OS_DEFAULT__DATASTORE_MANAGER'] = args.datastore;
  }
  let rpcKey: string | null = null;
  if (args.rpcKeyFile) rpcKey = readFileSync(args.rpcKeyFile, 'utf8').trim();
  else if (args.rpcKey) rpcKey = args.rpcKey;
  else if (env['GUESTAGENT_RPC_KEY']) rpcKey = env['GUESTAGENT_RPC_KEY'];
  if (rpcKey !== null) overlay['OS_DEFAULT__INSTANCE_RPC_ENCR_KEY'] = rpcKey;
  if (args.transportUrl) overlay['OS_DEFAULT__TRANSPORT_URL'] = args.transportUrl;
  let guestId = args.guestId;
  if (!guestId && local) guestId = persistentGuestId(stateDir, args.kind === 'daemon');
  if (guestId) overlay['OS_DEFAULT__GUEST_ID'] = guestId;
  const noSources = args.sources.length === 0;
  const sources = noSources && !local && existsSync(GUEST_CONF_DIR) ? [{ kind: 'dir' as const, path: GUEST_CONF_DIR }] : args.sources;
  const config = loadConfig({ sources, configFiles: [], configDirs: [], env: overlay });
  return { config, local, stateDir, rpcKey: config.instanceRpcEncrKey, runner: args.runner ?? (local ? 'process' : 'systemd'), datastorePort: args.datastorePort };
}

/** A local run keeps the id it made up, so a restart serves the same topic. */
function persistentGuestId(stateDir: string, create: boolean): string | null {
  const file = join(stateDir, 'guest-id');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  if (!create) return null;
  const id = randomUUID();
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  writeFileSync(file, id + '\n');
  return id;
}

export interface DaemonOverrides {
  /** Use this datastore factory instead of the registry's (tests of the spine). */
  factory?: DatastoreFactory;
  /** Quiet spells: full GCs with malloc_trim, then a pageout (process/idle-gc.ts, idle-memory.ts): the daemon's own process only. */
  idleGc?: IdleGc;
  /** How long in-flight calls may run on after a stop before they are aborted (default GRACE_MS; tests shorten it). */
  graceMs?: number;
  /** V8's minor GC, which the backup pipelines run after each 8 MiB through Node (process/idle-gc.ts). */
  minorGc?: (() => void) | null;
}

export async function runDaemon(s: Settings, log: Logger, o: DaemonOverrides = {}): Promise<Agent> {
  const c = s.config;
  const manager = c.datastoreManager;
  if (!manager || !isDatastoreName(manager)) {
    throw new ConfigError(`datastore_manager '${manager ?? ''}' is not one of mysql, mariadb, postgresql, redis`, { section: 'DEFAULT', option: 'datastore_manager' });
  }
  const load = DATASTORES[manager];
  const factory = o.factory ?? (load ? await load() : null);
  if (!factory) throw new ConfigError(`datastore '${manager}' is not available in this build`, { section: 'DEFAULT', option: 'datastore_manager' });
  const secure = c.instanceRpcEncrKey ? createSecureCodec(c.instanceRpcEncrKey) : null;
  const r = c.rabbit;
  const connection = new BrokerConnection({
    hosts: c.transportUrl.hosts,
    virtualHost: c.transportUrl.virtualHost,
    heartbeatSec: r.heartbeatTimeoutThresholdSec,
    reconnectDelayMs: r.kombuReconnectDelayMs,
    retryIntervalMs: r.retryIntervalMs,
    retryBackoffMs: r.retryBackoffMs,
    intervalMaxMs: r.intervalMaxMs,
    tls: r.ssl || c.transportUrl.ssl ? (r.ssl ?? { caFile: null, certFile: null, keyFile: null, version: null }) : null,
    log: log.child({ component: 'broker' }),
  });
  const conductor = new ConductorClient({
    connection,
    exchange: c.controlExchange,
    topic: c.conductorQueue,
    guestId: c.guestId,
    codec: secure,
    exchangeDurable: r.amqpDurableQueues || r.quorumQueue,
    exchangeAutoDelete: r.amqpAutoDelete,
    log: log.child({ component: 'conductor' }),
  });
  const datastore = factory({
    log: log.child({ datastore: manager }),
    section: c.datastoreSections[manager],
    runner: s.runner,
    stateDir: join(s.stateDir, manager),
    port: s.datastorePort,
    events: { rootEnabled: () => void conductor.reportRoot().catch((err: unknown) => log.warn({ err }, 'report_root failed')) },
  });
  const markers = new PrepareMarkers(s.stateDir);
  const versionFile = join(s.stateDir, 'datastore_version');
  const reporter = new StatusReporter({
    conductor,
    probe: datastore.status,
    isPrepared: () => markers.completed,
    reportIntervalMs: c.reportIntervalSec * 1000,
    log: log.child({ component: 'heartbeat' }),
  });
  const volumes = createVolumeManager({ exec, log: log.child({ component: 'volume' }) });
  // Only a real guest's prepare formats and mounts its data volume; a local
  // run's process runner never touches block devices on its own.
  const preparer: VolumePreparer | null =
    s.runner === 'systemd'
      ? {
          async prepareVolume(device, mountPoint, ctx) {
            await volumes.ensureFormatted(device, { signal: ctx.signal });
            await volumes.mount(device, mountPoint, { writeFstab: true, signal: ctx.signal });
          },
        }
      : null;
  const devicePath = c.datastoreSections[manager]['device_path'];
  const modules = createModuleManager({ dir: join(s.stateDir, 'modules'), datastoreManager: manager, moduleTypes: c.moduleTypes, log: log.child({ component: 'modules' }) });
  const prepare = new PrepareService({ datastore, markers, reporter, volumes: preparer, devicePath: typeof devicePath === 'string' && devicePath ? devicePath : null, modules,
    volumeTotalGb: async (mountPoint) => (await filesystemStats(mountPoint)).total,
  });
  const backups = createBackupService({
    datastore,
    updateBackup: (id, fields) => conductor.updateBackup(id, fields),
    usedGb: async () => (await filesystemStats(datastore.mountPoint)).used,
    container: c.backup.swiftContainer,
    segmentMaxSize: c.backup.segmentMaxSize,
    swiftUrl: c.backup.swiftUrl ?? null,
    keystone: c.keystone,
    datastoreVersion: c.datastoreVersion,
    encryptionKey: c.backup.encryptionKey,
    compression: c.backup.compression,
    retries: c.backup.retries,
    journalDir: join(s.stateDir, 'backups-running'),
    minorGc: o.minorGc ?? null,
  });
  const section = c.datastoreSections[manager];
  const exposedLogs = section['guest_log_exposed_logs'];
  const guestLogs = createGuestLogService({
    guestId: c.guestId,
    manager,
    datastore: datastore.logs ?? null,
    exposed: typeof exposedLogs === 'string' ? exposedLogs.replace(/,/g, ' ').split(/\s+/).filter(Boolean) : Array.isArray(exposedLogs) ? exposedLogs.map(String) : [],
    agentLogFile: c.guestLog.agentLogFile,
    container: c.guestLog.container,
    limit: c.guestLog.limit,
    expirySec: c.guestLog.expirySec,
    log: log.child({ component: 'guest-log' }),
  });
  const methods = buildMethodTable({
    backups,
    guestLogs,
    modules,
    datastore,
    prepare,
    guestId: c.guestId,
    filesystemStats,
    volumes,
    status: { hold: (st, ms) => reporter.hold(st, ms), release: () => reporter.release(), endFailureReport: () => reporter.endFailureReport() },
    datastoreVersion: {
      // Trove does not rewrite guest_info.conf after an upgrade: the agent keeps the new version itself.
      current: () => (existsSync(versionFile) ? readFileSync(versionFile, 'utf8').trim() : c.datastoreVersion),
      record: (v) => writeFileSync(versionFile, `${v}\n`, { mode: 0o644 }),
    },
    reporter: {
      reportRoot: () => conductor.reportRoot(),
      notifyEnd: (n, a) => conductor.notifyEnd(n, a),
      notifyExcInfo: (n, m, e) => conductor.notifyExcInfo(n, m, e),
    },
  });
  const topic = `guestagent.${c.guestId}`;
  const server = new RpcServer({
    connection,
    topology: serverTopology(c.controlExchange, topic, c.guestId, {
      durableQueues: r.amqpDurableQueues,
      autoDelete: r.amqpAutoDelete,
      haQueues: r.haQueues,
      quorumQueue: r.quorumQueue,
      quorumDeliveryLimit: r.quorumDeliveryLimit,
      quorumMaxMemoryLength: r.quorumMaxMemoryLength,
      quorumMaxMemoryBytes: r.quorumMaxMemoryBytes,
      transientQueuesTtlSec: r.transientQueuesTtlSec,
    }),
    dispatcher: new Dispatcher({ methods, version: GUEST_API_VERSION, log }),
    codec: createRequestCodec(secure),
    prefetch: r.qosPrefetchCount,
    log: log.child({ component: 'rpc' }),
    onHandled: o.idleGc ? () => o.idleGc!.touch() : undefined,
  });
  const agent = new Agent({ connection, server, reporter, conductor, datastore, markers, log, graceMs: o.graceMs ?? GRACE_MS });
  await agent.start();
  // Backups a killed agent left running: FAILED to conductor, their objects removed where the agent can.
  void backups.recoverInterrupted({ log: log.child({ component: 'backup' }), signal: new AbortController().signal }).catch((err: unknown) => log.error({ err }, 'could not settle interrupted backups'));
  log.info({ topic, exchange: c.controlExchange, datastore: manager, encrypted: secure !== null, state_dir: s.stateDir }, 'guest agent ready');
  if (s.local) {
    process.stderr.write(
      `\nguestagent: serving ${topic} on exchange '${c.controlExchange}' (${manager}, state in ${s.stateDir})\n` +
        `  try: npx guestagent call --guest-id ${c.guestId} rpc_ping${secure ? ' (with the same --rpc-key-file)' : ''}\n\n`,
    );
  }
  return agent;
}

/** What a launcher knows of its layout. */
export interface LaunchOptions {
  /** The idle-memory addon's path, where it is not at its place relative to src/process (the bundle). */
  idleMemoryModule?: string;
}

export async function main(argv: string[], env: NodeJS.ProcessEnv, launch: LaunchOptions = {}): Promise<number> {
  let args: ReturnType<typeof parseCommandLine>;
  try {
    args = parseCommandLine(argv);
  } catch (err) {
    process.stderr.write(`guestagent: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (args.kind === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  let settings: Settings;
  try {
    settings = resolveSettings(args, env);
  } catch (err) {
    process.stderr.write(`guestagent: ${(err as Error).message}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
  if (args.kind === 'call') return runCall(args, settings);
  const pretty = args.logFormat ? args.logFormat === 'pretty' : settings.local && process.stderr.isTTY === true;
  let log: Logger;
  try {
    const made = createLoggerWithFile({ level: args.logLevel ?? settings.config.logLevel, pretty, file: settings.config.logFile });
    log = made.log;
    if (made.file) {
      const file = made.file;
      process.on('SIGHUP', () => file.reopen());
    }
  } catch (err) {
    process.stderr.write(`guestagent: cannot open the log file ${settings.config.logFile}: ${(err as Error).message}\n`);
    return 1;
  }
  // Under the unit (Type=notify): started only once it consumes RPC; watchdog pings from here on.
  const notifier = createSdNotifier(env, log);
  notifier?.status(`connecting to the broker for guestagent.${settings.config.guestId}`);
  let agent: Agent;
  try {
    const mem = loadIdleMemory(launch.idleMemoryModule);
    if (!mem.ok) log.warn({ reason: mem.reason }, 'idle memory module unavailable: memory freed after a burst of calls or a backup stays resident (build it with node scripts/build-native.mjs)');
    // Not while a call (a prepare, a backup) runs on: its code would only be read back.
    const afterSpell = mem.ok
      ? createIdlePageout(mem.pageout, {
          busy: () => agent?.busy ?? false,
          onPaged: (r) => log.debug({ rss_file_mib: [r.before, r.after].map((m) => Math.round(m * 10) / 10) }, 'paged out code not run since start-up or the last pageout'),
        })
      : null;
    const idleGc = createIdleGc(500, 5000, idleCollector(exposeGc(), mem.ok ? mem.trim : null), FOLLOW_UPS_MS, afterSpell, rssGrowthGate(SPELL_MIN_GROWTH_BYTES));
    agent = await runDaemon(settings, log, { idleGc, minorGc: exposeMinorGc() });
    idleGc.touch(); // start-up's own garbage, once the agent is quiet

    notifier?.ready(`serving guestagent.${settings.config.guestId}`);
  } catch (err) {
    notifier?.close();
    log.fatal({ err }, 'guest agent could not start');
    if (err instanceof ConfigError) process.stderr.write(`guestagent: ${err.message}\n`);
    return 1;
  }
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (sig: NodeJS.Signals): void => {
      if (stopping) {
        log.warn({ signal: sig }, 'second signal: exiting now');
        resolve(1);
        return;
      }
      stopping = true;
      notifier?.stopping();
      log.info({ signal: sig }, 'stopping');
      const force = setTimeout(() => {
        log.error('shutdown took too long; exiting');
        resolve(1);
      }, FORCE_MS);
      force.unref();
      void agent.stop().then(() => {
        clearTimeout(force);
        notifier?.close();
        resolve(0);
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
