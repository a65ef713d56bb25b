/**
 * The port between the agent and a datastore. A datastore module
 * (datastores/<name>/index.ts) exports a factory returning a plain object
 * that satisfies `Datastore`: a few required capabilities and optional ones.
 * The dispatcher (src/handlers) answers DatastoreOperationNotSupported for a
 * missing optional capability, naming the method and the datastore.
 *
 * Everything here is in domain terms: handlers parse Trove's wire dicts
 * (`_name`, `_host`, ...) into these types before any datastore code runs.
 */
import type { Codec } from './backup/compress.ts';
import type { Logger } from './log.ts';

export type DatastoreName = 'mysql' | 'mariadb' | 'postgresql' | 'redis';

/**
 * Descriptions of Trove's ServiceStatuses (trove/instance/service_status.py):
 * exactly the strings conductor's heartbeat payload carries.
 */
export type ServiceStatus =
  | 'running'
  | 'blocked'
  | 'paused'
  | 'shutdown'
  | 'crashed'
  | 'failed to spawn'
  | 'building'
  | 'promoting replica'
  | 'ejecting replica source'
  | 'transferring guest logs'
  | 'unknown'
  | 'new'
  | 'deleted'
  | 'guestagent error'
  | 'instance ready'
  | 'restart required'
  | 'healthy'
  | 'upgrading'
  | 'restarting';

/** What every long datastore operation receives. */
export interface OpContext {
  log: Logger;
  /** Aborted on agent shutdown or when the caller gives up. */
  signal: AbortSignal;
}

/** A database (Trove: DatastoreSchema and its per-datastore subclasses). */
export interface Schema {
  name: string;
  /** MySQL character set, PostgreSQL encoding. */
  characterSet?: string | null;
  collate?: string | null;
}

/** A user (Trove: DatastoreUser). `host` is MySQL's; others leave it undefined. */
export interface User {
  name: string;
  host?: string | null;
  password?: string | null;
  /** Database names the user has access to. */
  databases: string[];
  isRoot?: boolean;
}

/** Trove's pagination contract: a page and the marker of the next one (or null). */
export interface PageRequest {
  limit?: number | null;
  marker?: string | null;
  includeMarker: boolean;
}
export interface Page<T> {
  items: T[];
  nextMarker: string | null;
}

export interface UserAttributes {
  name?: string | null;
  host?: string | null;
  password?: string | null;
}

/** The arguments of Trove's rebuild (the guest image replaced, the data volume kept), parsed. */
export interface RebuildRequest {
  dsVersion: string | null;
  /** Trove renders the config template again for the flavour and sends it. */
  configContents: string | null;
  /** The instance's configuration group values, when it has one. */
  overrides: Record<string, unknown> | null;
  mountPoint: string;
}

/** The arguments of Trove's prepare, parsed. */
export interface PrepareRequest {
  memoryMb: number;
  packages: string[];
  databases: Schema[];
  users: User[];
  devicePath: string | null;
  mountPoint: string | null;
  backupInfo: BackupInfo | null;
  configContents: string | null;
  rootPassword: string | null;
  overrides: Record<string, unknown> | null;
  clusterConfig: Record<string, unknown> | null;
  snapshot: Record<string, unknown> | null;
  modules: unknown[] | null;
  dsVersion: string | null;
}

/** backup_info as Trove sends it for create_backup and for restore in prepare. */
export interface BackupInfo {
  id: string;
  instanceId?: string | null;
  location?: string | null;
  type?: string | null;
  checksum?: string | null;
  datastore?: string | null;
  datastoreVersion?: string | null;
  swiftContainer?: string | null;
  swiftUrl?: string | null;
  parent?: { location: string; checksum: string | null } | null;
}

/** Status from the server itself (a connection and a query), never the runner's belief. */
export interface StatusProbe {
  status(ctx: OpContext): Promise<ServiceStatus>;
}

export interface Lifecycle {
  /**
   * Everything prepare does for this datastore; the agent handles markers and
   * heartbeats around it. `fetcher` restores `req.backupInfo` when set.
   */
  prepare(req: PrepareRequest, ctx: OpContext, fetcher?: BackupFetcher): Promise<void>;
  restart(ctx: OpContext): Promise<void>;
  stop(opts: { doNotStartOnReboot: boolean }, ctx: OpContext): Promise<void>;
  startWithConfChanges(configContents: string | null, ctx: OpContext): Promise<void>;
  /**
   * Called once when the agent starts, before the RPC server consumes: a
   * process runner restarts a server prepared by an earlier run.
   */
  resume?(prepared: boolean, ctx: OpContext): Promise<void>;
  /**
   * On a new guest image over the old data volume (Trove's rebuild): write
   * the configuration, take the server on the volume's data back (the admin
   * credentials lived on the old root disk) and start it. Absent: the
   * datastore cannot be rebuilt.
   */
  rebuild?(req: RebuildRequest, ctx: OpContext): Promise<void>;
  /** Called once on agent shutdown: release connections (a process runner may stop its server). */
  close(): Promise<void>;
}

export interface Admin {
  createDatabases(dbs: Schema[], ctx: OpContext): Promise<void>;
  listDatabases(page: PageRequest, ctx: OpContext): Promise<Page<Schema>>;
  deleteDatabase(db: Schema, ctx: OpContext): Promise<void>;
  createUsers(users: User[], ctx: OpContext): Promise<void>;
  listUsers(page: PageRequest, ctx: OpContext): Promise<Page<User>>;
  getUser(name: string, host: string | null, ctx: OpContext): Promise<User | null>;
  deleteUser(user: User, ctx: OpContext): Promise<void>;
  updateAttributes(name: string, host: string | null, attrs: UserAttributes, ctx: OpContext): Promise<void>;
  changePasswords(users: User[], ctx: OpContext): Promise<void>;
  grantAccess(name: string, host: string | null, databases: string[], ctx: OpContext): Promise<void>;
  revokeAccess(name: string, host: string | null, database: string, ctx: OpContext): Promise<void>;
  listAccess(name: string, host: string | null, ctx: OpContext): Promise<Schema[]>;
}

export interface Root {
  /** Enables root with a generated password (or the given one); returns the root user with its password. */
  enableRoot(password: string | null, ctx: OpContext): Promise<User>;
  disableRoot(ctx: OpContext): Promise<void>;
  isRootEnabled(ctx: OpContext): Promise<boolean>;
  getRootPassword?(ctx: OpContext): Promise<string | null>;
}

export interface Configuration {
  updateOverrides(overrides: Record<string, unknown>, remove: boolean, ctx: OpContext): Promise<void>;
  applyOverrides(overrides: Record<string, unknown>, ctx: OpContext): Promise<void>;
  resetConfiguration(configContents: string, ctx: OpContext): Promise<void>;
}

export interface Upgrade {
  /** Trove's pre_upgrade: what the upgrade will need; the server keeps running. */
  preUpgrade(ctx: OpContext): Promise<Record<string, unknown>>;
  /**
   * Trove 18's upgrade cast: run the server as datastore version `version` on
   * this guest. A package-based guest cannot swap its server for another
   * version: it throws unless the installed server is that version, then
   * restarts it and upgrades its system tables.
   */
  upgrade(version: string, ctx: OpContext): Promise<void>;
  postUpgrade(upgradeInfo: Record<string, unknown>, ctx: OpContext): Promise<void>;
}

/** A replication user on the source, as Trove's snapshot and replica context carry it. */
export interface ReplicationUser {
  name: string;
  password: string;
}

/**
 * What a replica is given to connect to its source: Trove's snapshot (from
 * get_replication_snapshot, with `dataset` when the replica was restored from
 * the source's backup) or replica context (get_replica_context).
 */
export interface ReplicaSource {
  master: { host: string; port: number };
  replicationUser: ReplicationUser;
  /** Restored from the source's snapshot backup: replication starts where that backup ends. */
  fromSnapshot: boolean;
}

/**
 * Trove's replication strategy for the datastore (trove/guestagent/strategies/
 * replication): the source's and the replica's halves. The agent's handlers
 * take the snapshot backup and shape Trove's dicts around these.
 */
export interface Replication {
  /** Trove's replication_strategy name: a snapshot from another strategy is refused. */
  readonly strategy: string;
  /** Source: Trove's rendered replica_source configuration in place (a restart when it was not). */
  enableAsMaster(configContents: string | null, ctx: OpContext): Promise<void>;
  /** Source: back to a plain instance (its source configuration removed, restarted). */
  demoteMaster(ctx: OpContext): Promise<void>;
  /** Source: a new user replicas log in with. */
  createReplicationUser(ctx: OpContext): Promise<ReplicationUser>;
  /** Source: where replicas connect. */
  masterRef(ctx: OpContext): Promise<{ host: string; port: number }>;
  /** Source: the replica context's log_position (MariaDB: the GTID position). */
  logPosition(ctx: OpContext): Promise<Record<string, unknown>>;
  /**
   * Replica: Trove's rendered replica configuration in place, replicating from `source`.
   * `restart` false (Trove's attach_replica(restart=False) on a demoted source) leaves the
   * server as it is for what follows (PostgreSQL: demote's pg_rewind); MySQL always restarts.
   */
  enableAsSlave(source: ReplicaSource, configContents: string | null, ctx: OpContext, restart: boolean): Promise<void>;
  /** Replica: stops replicating and forgets the source; the replication user's name (MySQL) or nothing (PostgreSQL). */
  detachSlave(forFailover: boolean, ctx: OpContext): Promise<{ replicationUser: string } | null>;
  makeReadOnly(readOnly: boolean, ctx: OpContext): Promise<void>;
  /** The newest transaction this server has written (MariaDB: gtid_binlog_pos). */
  latestTxnId(ctx: OpContext): Promise<string>;
  /** Replica: the source's id and the last of its transactions applied here. */
  lastTxn(ctx: OpContext): Promise<[string | number | null, number]>;
  /** Blocks until the transaction `txn` (a latestTxnId answer) has been applied here. */
  waitForTxn(txn: string, ctx: OpContext): Promise<void>;
}

/** Hooks a datastore offers the agent for reporting to conductor (e.g. report_root). */
export interface DatastoreEvents {
  rootEnabled?(user: User): void;
}

export interface Datastore {
  readonly name: DatastoreName;
  /** Where the data volume is mounted (the datastore section's mount_point). */
  readonly mountPoint: string;
  readonly status: StatusProbe;
  readonly lifecycle: Lifecycle;
  readonly admin?: Admin;
  readonly root?: Root;
  readonly configuration?: Configuration;
  readonly upgrade?: Upgrade;
  readonly backup?: BackupCapability;
  readonly logs?: LogCapability;
  readonly replication?: Replication;
}

/** A log file Trove users can publish to Swift (guest_log_list / guest_log_action). */
export interface LogDef {
  name: string;
  /** USER logs can be switched on and off; SYS logs are always on. */
  type: 'USER' | 'SYS';
  file: string;
}

/** The datastore's own logs (get_datastore_log_defs in each of Trove's datastore managers). */
export interface LogCapability {
  defs(): LogDef[];
  isEnabled(name: string): Promise<boolean>;
  /** Switches a USER log on or off; resolves true when only a restart makes it take effect. */
  setEnabled(name: string, enabled: boolean, ctx: OpContext): Promise<boolean>;
}

/** How the agent runs the database server: the distribution's unit, or a child it supervises itself. */
export type RunnerKind = 'systemd' | 'process';

/** A datastore's config section, as oslo.config typed it (see src/config). */
export type SectionValues = Readonly<Record<string, string | number | boolean | string[] | Record<string, string> | null>>;

/** What src/main.ts hands a datastore factory (datastores/index.ts). */
export interface DatastoreOptions {
  log: Logger;
  /** The datastore's config section ([mysql], [postgresql], ...), defaults applied. */
  section: SectionValues;
  /** How the server is run. */
  runner: RunnerKind;
  /**
   * Directory the agent owns for its own state: prepare markers, the admin
   * password file (mode 0600), and, for the process runner, the data
   * directory, socket and logs (`<stateDir>/<datastore>/...`).
   */
  stateDir: string;
  /** TCP port of the server under the process runner (tests pick free ports); null = the datastore's default. */
  port: number | null;
  /** Reports the agent forwards to conductor. */
  events: DatastoreEvents;
}

export type DatastoreFactory = (opts: DatastoreOptions) => Datastore;

/** A program the backup pipeline runs: argv only; secrets go through env or files. */
export interface ToolSpec {
  file: string;
  args: readonly string[];
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Each line the tool writes to stderr (e.g. to read an LSN). */
  onStderrLine?: (line: string) => void;
}

/** How one backup of this datastore is made: the tool streaming it, and what to record. */
export interface BackupPlan {
  producer: ToolSpec;
  /** Object name suffix after `<backup id>.` ('xbstream.gz', 'tar.gz'). */
  extension: string;
  /**
   * The agent compresses the stream with its codec (false when the tool compresses it
   * itself, `extension` then naming the tool's codec: 'tar.zst').
   */
  compress: boolean;
  /** Object metadata once the tool has finished (lsn, WAL positions, ...). */
  metadata(): Record<string, string> | Promise<Record<string, string>>;
  /** Always called afterwards (temp files). */
  cleanup(): Promise<void>;
}

/** One stored backup: where it is and the checksum recorded for it (null: none to verify). */
export interface BackupLink {
  location: string;
  checksum: string | null;
}

/** Streams a stored backup object into a tool's stdin (provided by the agent, which holds the Swift credentials). */
export interface BackupFetcher {
  /** The object's metadata (lower-case keys without `x-object-meta-`). */
  metadata(location: string, ctx: OpContext): Promise<Record<string, string>>;
  /**
   * The backup at `location` and the backups it was taken on (each one's
   * `parent-location` and `parent-checksum` metadata), the full backup first:
   * the order a restore applies them in.
   */
  chain(location: string, checksum: string | null, ctx: OpContext): Promise<BackupLink[]>;
  /** Downloads, checks the checksum before streaming, decompresses and feeds `consumer`. */
  restoreInto(location: string, checksum: string | null, consumer: ToolSpec, ctx: OpContext): Promise<void>;
}

export interface BackupCapability {
  /**
   * `parent` is set for an incremental backup: the parent's object metadata. `codec` is the
   * agent's for new backups; a tool that can compress with it may do so itself.
   */
  plan(req: { backupId: string; parent: Record<string, string> | null; codec: Codec }, ctx: OpContext): Promise<BackupPlan>;
}
