/**
 * Replication methods of Trove's guest API (trove/guestagent/datastore/
 * manager.py, mysql_common/manager.py): the source's snapshot (its
 * replication configuration, a backup to Swift reported to conductor as any
 * backup, a replication user) and replica context; the replica's attach and
 * detach; the failover helpers (read-only, transaction ids, promotion and
 * demotion). Shapes are Trove's dicts; the datastore does the server's part.
 */
import type { OpContext, Replication } from '../datastore.ts';
import { BadRequestError, OperationNotSupportedError } from '../errors.ts';
import { attachReplica, replicaConf } from '../replication.ts';
import type { CallContext, MethodSpec } from '../rpc/dispatcher.ts';
import type { HandlerDeps } from './deps.ts';
import { parseBackupInfo } from './wire.ts';

const optConfig = (v: unknown, name: string): string | null => {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw new BadRequestError(`'${name}' must be the rendered configuration (a string)`);
  return v;
};
const bool = (v: unknown, name: string): boolean => {
  if (typeof v !== 'boolean') throw new BadRequestError(`'${name}' must be true or false`);
  return v;
};

export function replicationMethods(d: HandlerDeps): Record<string, MethodSpec> {
  const op = (ctx: CallContext): OpContext => ({ log: ctx.log, signal: ctx.signal });
  const need = (ctx: CallContext): Replication => {
    if (!d.datastore.replication) throw new OperationNotSupportedError(ctx.method, d.datastore.name);
    return d.datastore.replication;
  };
  const volumeTotalGb = async () => (await d.filesystemStats(d.datastore.mountPoint)).total;

  return {
    backup_required_for_replication: {
      params: [],
      handler: async (_a, ctx) => {
        need(ctx);
        return true;
      },
    },

    get_replication_snapshot: {
      params: [{ name: 'snapshot_info', required: true }, { name: 'replica_source_config' }],
      handler: async (a, ctx) => {
        const r = need(ctx);
        const info = parseBackupInfo(a['snapshot_info']);
        if (!info) throw new BadRequestError("'snapshot_info' is required");
        if (!d.backups || !d.datastore.backup) throw new OperationNotSupportedError(ctx.method, d.datastore.name);
        const o = op(ctx);
        await r.enableAsMaster(optConfig(a['replica_source_config'], 'replica_source_config'), o);
        ctx.log.info({ backup_id: info.id }, 'enabled as replication source; taking the snapshot backup');
        // The same backup as create_backup, reported to conductor as one; a failure fails the snapshot.
        await d.backups.create(info, ctx.request, o);
        const user = await r.createReplicationUser(o);
        const stats = await d.filesystemStats(d.datastore.mountPoint);
        return {
          dataset: { datastore_manager: d.datastore.name, dataset_size: stats.used, volume_size: stats.total, snapshot_id: info.id },
          replication_strategy: r.strategy,
          master: await r.masterRef(o),
          replica_conf: replicaConf(user, {}),
        };
      },
    },

    get_replica_context: {
      params: [],
      handler: async (_a, ctx) => {
        const r = need(ctx);
        const o = op(ctx);
        const user = await r.createReplicationUser(o);
        return { master: await r.masterRef(o), replica_conf: replicaConf(user, await r.logPosition(o)) };
      },
    },

    attach_replica: {
      params: [{ name: 'replica_info', required: true }, { name: 'slave_config', required: true }, { name: 'restart' }],
      handler: async (a, ctx) => {
        const r = need(ctx);
        d.status.endFailureReport();
        try {
          const restart = a['restart'] === undefined || a['restart'] === null ? false : bool(a['restart'], 'restart');
          await attachReplica(r, a['replica_info'], optConfig(a['slave_config'], 'slave_config'), volumeTotalGb, op(ctx), restart);
        } catch (err) {
          // As Trove's agent: the instance shows FAILED until its next real status.
          d.status.hold('failed to spawn', 15_000);
          throw err;
        }
      },
    },

    detach_replica: {
      params: [{ name: 'for_failover' }],
      handler: async (a, ctx) => {
        const forFailover = a['for_failover'] === undefined || a['for_failover'] === null ? false : bool(a['for_failover'], 'for_failover');
        const detached = await need(ctx).detachSlave(forFailover, op(ctx));
        return detached ? { replication_user: detached.replicationUser } : null;
      },
    },

    make_read_only: {
      params: [{ name: 'read_only', required: true }],
      handler: async (a, ctx) => {
        await need(ctx).makeReadOnly(bool(a['read_only'], 'read_only'), op(ctx));
      },
    },

    enable_as_master: {
      params: [{ name: 'replica_source_config', required: true }],
      handler: async (a, ctx) => {
        await need(ctx).enableAsMaster(optConfig(a['replica_source_config'], 'replica_source_config'), op(ctx));
      },
    },

    demote_replication_master: {
      params: [],
      handler: async (_a, ctx) => {
        await need(ctx).demoteMaster(op(ctx));
      },
    },

    get_latest_txn_id: {
      params: [],
      handler: async (_a, ctx) => need(ctx).latestTxnId(op(ctx)),
    },

    get_last_txn: {
      params: [],
      handler: async (_a, ctx) => need(ctx).lastTxn(op(ctx)),
    },

    wait_for_txn: {
      params: [{ name: 'txn', required: true }],
      handler: async (a, ctx) => {
        if (typeof a['txn'] !== 'string') throw new BadRequestError("'txn' must be a GTID position (a string)");
        await need(ctx).waitForTxn(a['txn'], op(ctx));
      },
    },
  };
}
