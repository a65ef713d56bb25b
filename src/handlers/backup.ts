/** create_backup (a cast): the datastore's tool streamed to Swift, progress reported to conductor. */
import { BadRequestError, OperationNotSupportedError } from '../errors.ts';
import type { MethodSpec } from '../rpc/dispatcher.ts';
import type { HandlerDeps } from './deps.ts';
import { withEndNotification } from './notify.ts';
import { parseBackupInfo } from './wire.ts';

export function backupMethods(d: HandlerDeps): Record<string, MethodSpec> {
  return {
    create_backup: {
      params: [{ name: 'backup_info', required: true }],
      handler: async (a, ctx) => {
        const info = parseBackupInfo(a['backup_info']);
        if (!info) throw new BadRequestError("'backup_info' is required");
        if (!d.backups || !d.datastore.backup) throw new OperationNotSupportedError(ctx.method, d.datastore.name);
        const backups = d.backups;
        await withEndNotification(ctx, d.reporter, {}, () => backups.create(info, ctx.request, { log: ctx.log, signal: ctx.signal }));
      },
    },
  };
}
