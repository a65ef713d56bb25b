/**
 * The whole guest API method table: every method of Trove's guest API up to
 * version 1.3 (trove/guestagent/api.py upstream; Debian's Trove 18 sends 1.0
 * and 1.1). A method this agent or the loaded datastore does not implement
 * answers DatastoreOperationNotSupported naming the method and the datastore;
 * nothing answers success without doing the work.
 */
import { OperationNotSupportedError } from '../errors.ts';
import type { MethodSpec, MethodTable } from '../rpc/dispatcher.ts';
import { adminMethods } from './admin.ts';
import { backupMethods } from './backup.ts';
import { logMethods } from './logs.ts';
import { moduleMethods } from './modules.ts';
import { replicationMethods } from './replication.ts';
import type { HandlerDeps } from './deps.ts';
import { lifecycleMethods } from './lifecycle.ts';
import { rootMethods } from './root.ts';
import { statusMethods } from './status.ts';
import { volumeMethods } from './volume.ts';

/** The newest guest API version whose methods are all routed. */
export const GUEST_API_VERSION = '1.3';

type Params = MethodSpec['params'];
const p = (...names: string[]): Params => names.map((n) => (n.endsWith('?') ? { name: n.slice(0, -1) } : { name: n, required: true }));

/** Methods of the guest API with their Python signatures, for those not implemented by an area module. */
const GUEST_API: Record<string, { params: Params; extraKwargs?: boolean }> = {
  apply_overrides: { params: p('overrides') },
  attach_replica: { params: p('snapshot', 'slave_config', 'restart?') },
  attach_replication_slave: { params: p('snapshot', 'slave_config?') },
  backup_required_for_replication: { params: [] },
  cleanup_source_on_replica_detach: { params: p('replica_info') },
  create_backup: { params: p('backup_info') },
  demote_replication_master: { params: [] },
  detach_replica: { params: p('for_failover?') },
  enable_as_master: { params: p('replica_source_config') },
  get_last_txn: { params: [] },
  get_latest_txn_id: { params: [] },
  get_replica_context: { params: [] },
  get_replication_snapshot: { params: p('snapshot_info', 'replica_source_config?') },
  get_txn_count: { params: [] },
  guest_log_action: { params: p('log_name', 'enable', 'disable', 'publish', 'discard') },
  guest_log_list: { params: [] },
  make_read_only: { params: p('read_only') },
  module_apply: { params: p('modules?') },
  module_list: { params: p('include_contents?') },
  module_remove: { params: p('module?') },
  mount_volume: { params: p('device_path?', 'mount_point?', 'write_to_fstab?') },
  post_create_backup: { params: [], extraKwargs: true },
  pre_create_backup: { params: [], extraKwargs: true },
  rebuild: { params: p('ds_version', 'config_contents?', 'config_overrides?') },
  resize_fs: { params: p('device_path?', 'mount_point?', 'online?') },
  ssl_action: { params: p('mode', 'container', 'enable', 'disable') },
  ssl_rollback: { params: [] },
  ssl_show: { params: [] },
  unmount_volume: { params: p('device_path?', 'mount_point?') },
  update_guest: { params: [] },
  upgrade: { params: p('upgrade_info') },
  wait_for_txn: { params: p('txn') },
};

export function buildMethodTable(d: HandlerDeps, extra: Record<string, MethodSpec> = {}): MethodTable {
  const table = new Map<string, MethodSpec>();
  for (const [name, sig] of Object.entries(GUEST_API)) {
    table.set(name, {
      ...sig,
      handler: async () => {
        throw new OperationNotSupportedError(name, d.datastore.name);
      },
    });
  }
  const areas = [statusMethods(d), adminMethods(d), rootMethods(d), lifecycleMethods(d), volumeMethods(d), backupMethods(d), logMethods(d), moduleMethods(d), replicationMethods(d), extra];
  for (const area of areas) for (const [name, spec] of Object.entries(area)) table.set(name, spec);
  return table;
}
