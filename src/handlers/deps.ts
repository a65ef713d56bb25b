/**
 * What the RPC method table needs from the rest of the agent. Handlers parse
 * kwargs, call these, and shape the result; they never touch AMQP.
 */
import type { BackupFetcher, Datastore, PrepareRequest, OpContext, RebuildRequest, ServiceStatus } from '../datastore.ts';
import type { BackupService } from '../backup/service.ts';
import type { GuestLogService } from '../guestlog.ts';
import type { ModuleManager } from '../modules.ts';

/** The conductor casts a handler may trigger (see src/rpc/conductor.ts). */
export interface Reporter {
  reportRoot(): Promise<void>;
  notifyEnd(serializedNotification: Record<string, unknown>, notificationArgs: Record<string, unknown>): Promise<void>;
  notifyExcInfo(serializedNotification: Record<string, unknown>, message: string, exception: string[]): Promise<void>;
}

/** Prepare with its markers, heartbeats and volume handling (src/prepare.ts). */
export interface PrepareRunner {
  prepare(req: PrepareRequest, ctx: OpContext, fetcher?: BackupFetcher): Promise<void>;
  rebuild(req: Omit<RebuildRequest, 'mountPoint'>, ctx: OpContext): Promise<void>;
}

import type { FilesystemStats } from '../volume/stats.ts';
import type { VolumeManager } from '../volume/volume-manager.ts';

export interface HandlerDeps {
  datastore: Datastore;
  reporter: Reporter;
  prepare: PrepareRunner;
  filesystemStats(path: string): Promise<FilesystemStats>;
  /** Block devices and filesystems (null: mount_volume and friends answer not supported). */
  volumes?: VolumeManager | null;
  /** Backups to Swift and restores from them (null: create_backup answers not supported). */
  backups?: BackupService | null;
  /** Guest logs published to Swift (null: guest_log_list and guest_log_action answer not supported). */
  guestLogs?: GuestLogService | null;
  /** Trove's instance modules (null: module_list, module_apply, module_remove answer not supported). */
  modules?: ModuleManager | null;
  guestId: string;
  /** Heartbeats: a status held in place of the datastore's own (src/heartbeat.ts). */
  status: { hold(status: ServiceStatus, ms?: number): void; release(): void; endFailureReport(): void };
  /** The datastore version this guest runs: the last upgrade's, else guest_info's datastore_version. */
  datastoreVersion: { current(): string | null; record(version: string): void };
}
