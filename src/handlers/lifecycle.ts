/**
 * prepare, restart, stop, configuration and upgrade methods. prepare is a
 * cast: the outcome reaches Trove through heartbeats and notifications, not
 * through a reply.
 */
import { BadRequestError, OperationNotSupportedError } from '../errors.ts';
import type { Configuration, OpContext, PrepareRequest, Upgrade } from '../datastore.ts';
import type { CallContext, MethodSpec } from '../rpc/dispatcher.ts';
import type { HandlerDeps } from './deps.ts';
import { withEndNotification } from './notify.ts';
import { isDict, list, optBool, optDict, optStr, parseBackupInfo, parseSchema, parseUser } from './wire.ts';

export function parsePrepare(a: Record<string, unknown>): PrepareRequest {
  const memory = a['memory_mb'];
  if (typeof memory !== 'number' || !Number.isFinite(memory)) throw new BadRequestError("'memory_mb' must be a number");
  const packages = a['packages'];
  const pkgs = packages === null || packages === undefined ? [] : Array.isArray(packages) ? packages : [packages];
  const modules = a['modules'];
  if (modules !== undefined && modules !== null && !Array.isArray(modules)) throw new BadRequestError("'modules' must be a list");
  return {
    memoryMb: memory,
    packages: pkgs.map((p) => {
      if (typeof p !== 'string') throw new BadRequestError("'packages' must be strings");
      return p;
    }),
    databases: list(a, 'databases').map(parseSchema),
    users: list(a, 'users').map(parseUser),
    devicePath: optStr(a, 'device_path'),
    mountPoint: optStr(a, 'mount_point'),
    backupInfo: parseBackupInfo(a['backup_info']),
    configContents: optStr(a, 'config_contents'),
    rootPassword: optStr(a, 'root_password'),
    overrides: optDict(a, 'overrides'),
    clusterConfig: optDict(a, 'cluster_config'),
    snapshot: optDict(a, 'snapshot'),
    modules: Array.isArray(modules) ? modules : null,
    dsVersion: optStr(a, 'ds_version'),
  };
}

export function lifecycleMethods(d: HandlerDeps): Record<string, MethodSpec> {
  const op = (ctx: CallContext): OpContext => ({ log: ctx.log, signal: ctx.signal });
  const lc = d.datastore.lifecycle;
  const configuration = (method: string): Configuration => {
    if (!d.datastore.configuration) throw new OperationNotSupportedError(method, d.datastore.name);
    return d.datastore.configuration;
  };
  // An operation on the server ends the report of an earlier failure (a refused
  // upgrade's 'failed to spawn'): Trove polls for this operation's outcome now.
  const begin = (ctx: CallContext): OpContext => {
    d.status.endFailureReport();
    return op(ctx);
  };
  const upgrade = (method: string): Upgrade => {
    if (!d.datastore.upgrade) throw new OperationNotSupportedError(method, d.datastore.name);
    return d.datastore.upgrade;
  };
  return {
    prepare: {
      params: [
        { name: 'packages', required: true }, { name: 'databases', required: true }, { name: 'memory_mb', required: true },
        { name: 'users', required: true }, { name: 'device_path' }, { name: 'mount_point' }, { name: 'backup_info' },
        { name: 'config_contents' }, { name: 'root_password' }, { name: 'overrides' }, { name: 'cluster_config' },
        { name: 'snapshot' }, { name: 'modules' }, { name: 'ds_version' },
      ],
      handler: async (a, ctx) => {
        const req = parsePrepare(a);
        await withEndNotification(ctx, d.reporter, { instance_id: d.guestId }, () => {
          // A restore reads Swift with the caller's token, like a backup.
          const fetcher = req.backupInfo && d.backups ? d.backups.fetcher(ctx.request, req.backupInfo) : undefined;
          return d.prepare.prepare(req, op(ctx), fetcher);
        });
      },
    },
    rebuild: {
      // A cast from the taskmanager after Nova rebuilt the server on a new image (the data volume kept).
      params: [{ name: 'ds_version', required: true }, { name: 'config_contents' }, { name: 'config_overrides' }],
      handler: async (a, ctx) => {
        const overrides = a['config_overrides'];
        if (overrides !== undefined && overrides !== null && !isDict(overrides)) throw new BadRequestError("'config_overrides' must be a dictionary");
        await d.prepare.rebuild(
          { dsVersion: optStr(a, 'ds_version'), configContents: optStr(a, 'config_contents'), overrides: (overrides as Record<string, unknown> | null | undefined) ?? null },
          begin(ctx),
        );
      },
    },
    restart: {
      params: [],
      handler: async (_a, ctx) => {
        await lc.restart(begin(ctx));
        d.guestLogs?.restarted();
      },
    },
    stop_db: {
      // API 1.0 callers send do_not_start_on_reboot; Trove 18's manager takes none.
      params: [{ name: 'do_not_start_on_reboot' }],
      handler: async (a, ctx) => lc.stop({ doNotStartOnReboot: optBool(a, 'do_not_start_on_reboot', false) }, begin(ctx)),
    },
    start_db_with_conf_changes: {
      params: [{ name: 'config_contents', required: true }, { name: 'ds_version' }],
      handler: async (a, ctx) => {
        await lc.startWithConfChanges(optStr(a, 'config_contents'), begin(ctx));
        d.guestLogs?.restarted();
      },
    },
    reset_configuration: {
      params: [{ name: 'configuration', required: true }],
      handler: async (a, ctx) => {
        // Trove sends {"config_contents": "..."} (the rendered template).
        const c = a['configuration'];
        const contents = isDict(c) ? c['config_contents'] : c;
        if (typeof contents !== 'string') throw new BadRequestError("'configuration' must carry 'config_contents'");
        await configuration(ctx.method).resetConfiguration(contents, op(ctx));
      },
    },
    update_overrides: {
      params: [{ name: 'overrides', required: true }, { name: 'remove' }],
      handler: async (a, ctx) =>
        configuration(ctx.method).updateOverrides(optDict(a, 'overrides') ?? {}, optBool(a, 'remove', false), op(ctx)),
    },
    apply_overrides: {
      params: [{ name: 'overrides', required: true }],
      handler: async (a, ctx) => configuration(ctx.method).applyOverrides(optDict(a, 'overrides') ?? {}, op(ctx)),
    },
    pre_upgrade: { params: [], handler: (_a, ctx) => upgrade(ctx.method).preUpgrade(begin(ctx)) },
    // Trove 18: pre_upgrade, then this cast with pre_upgrade's answer plus the new
    // datastore_version, then it polls the heartbeats for healthy (ten minutes) and
    // fails the upgrade on 'failed to spawn', 'unknown' or 'guestagent error'.
    upgrade: {
      params: [{ name: 'upgrade_info', required: true }],
      handler: async (a, ctx) => {
        const info = optDict(a, 'upgrade_info');
        if (!info) throw new BadRequestError("'upgrade_info' must be a dictionary");
        const version = info['datastore_version'];
        if (typeof version !== 'string' || version === '') throw new BadRequestError("'upgrade_info' has no datastore_version");
        const up = upgrade(ctx.method);
        const opCtx = begin(ctx);
        // As Trove's guest: the version it already runs needs nothing.
        if (version === d.datastoreVersion.current()) {
          ctx.log.info({ datastore_version: version }, 'upgrade: already this version');
          return null;
        }
        d.status.hold('upgrading');
        try {
          await up.upgrade(version, opCtx);
        } catch (err) {
          // A cast has no reply: Trove learns of the failure from the heartbeat it polls. The
          // server was left as it was; 15 s on (three of Trove's polls) the heartbeats report it as it is again.
          ctx.log.error({ err, datastore_version: version }, 'upgrade failed');
          d.status.hold('failed to spawn', 15_000);
          throw err;
        }
        d.datastoreVersion.record(version);
        ctx.log.info({ datastore_version: version }, 'upgraded');
        d.status.release();
        return null;
      },
    },
    post_upgrade: {
      params: [{ name: 'upgrade_info', required: true }],
      handler: async (a, ctx) => {
        const info = optDict(a, 'upgrade_info');
        if (!info) throw new BadRequestError("'upgrade_info' must be a dictionary");
        await upgrade(ctx.method).postUpgrade(info, op(ctx));
      },
    },
  };
}
