/**
 * The datastore-independent half of Trove's replication (trove/guestagent/
 * datastore/manager.py and mysql_common/manager.py): the snapshot and replica
 * context dicts Trove's taskmanager passes from a source to its replicas, the
 * checks a replica makes before it attaches, and the attach itself. The
 * datastore's Replication does the server's part.
 */
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import type { OpContext, ReplicaSource, Replication, ReplicationUser } from './datastore.ts';
import { BadRequestError, IncompatibleReplicationStrategyError, InsufficientSpaceForReplicaError } from './errors.ts';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads what a replica needs from a snapshot or replica context dict, refusing a malformed one. */
export function parseReplicaSource(info: unknown): ReplicaSource {
  if (!isObject(info)) throw new BadRequestError('the replication source must be a dict');
  const master = info['master'];
  const conf = info['replica_conf'];
  if (!isObject(master) || typeof master['host'] !== 'string' || !master['host']) throw new BadRequestError("the replication source has no 'master' host");
  const port = Number(master['port']);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new BadRequestError(`the replication source's port ${JSON.stringify(master['port'])} is not a port`);
  const user = isObject(conf) ? conf['replication_user'] : undefined;
  if (!isObject(user) || typeof user['name'] !== 'string' || typeof user['password'] !== 'string') {
    throw new BadRequestError("the replication source has no 'replica_conf.replication_user'");
  }
  return {
    master: { host: master['host'], port },
    replicationUser: { name: user['name'], password: user['password'] },
    fromSnapshot: 'dataset' in info,
  };
}

/**
 * Trove's attach_replica on the replica: the strategy must be this guest's and
 * the volume must hold the source's data set, then the datastore attaches.
 */
export async function attachReplica(
  replication: Replication,
  info: unknown,
  slaveConfig: string | null,
  volumeTotalGb: () => Promise<number>,
  ctx: OpContext,
  restart = true,
): Promise<void> {
  const source = parseReplicaSource(info);
  const rec = info as Record<string, unknown>;
  if ('replication_strategy' in rec) {
    if (rec['replication_strategy'] !== replication.strategy) throw new IncompatibleReplicationStrategyError(replication.strategy, String(rec['replication_strategy']));
    const dataset = rec['dataset'];
    const size = isObject(dataset) ? Number(dataset['dataset_size']) : NaN;
    if (Number.isFinite(size)) {
      const total = await volumeTotalGb();
      if (total < size) throw new InsufficientSpaceForReplicaError(total, size);
    }
  }
  await replication.enableAsSlave(source, slaveConfig, ctx, restart);
}

/** Trove's get_my_ipv4: the address of the interface the default route leaves by. */
export function primaryIpv4(routes = (() => {
  try {
    return readFileSync('/proc/net/route', 'utf8');
  } catch {
    return '';
  }
})(), ifaces = networkInterfaces()): string {
  const dflt = routes.split('\n').slice(1).map((l) => l.trim().split(/\s+/)).find((f) => f[1] === '00000000' && f[7] === '00000000');
  const candidates = [...(dflt ? [dflt[0]!] : []), ...Object.keys(ifaces)];
  for (const name of candidates) {
    const a = ifaces[name]?.find((x) => x.family === 'IPv4' && !x.internal);
    if (a) return a.address;
  }
  return '127.0.0.1';
}

/** The replica context dict (get_replica_context) and the snapshot's replica_conf. */
export function replicaConf(user: ReplicationUser, logPosition: Record<string, unknown>): Record<string, unknown> {
  return { log_position: logPosition, replication_user: { name: user.name, password: user.password } };
}
