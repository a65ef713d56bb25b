/** guest_log_list and guest_log_action: the datastore's and the agent's logs, published to Swift with the caller's token. */
import { ArgumentTypeError, OperationNotSupportedError } from '../errors.ts';
import type { MethodSpec } from '../rpc/dispatcher.ts';
import type { BackupService } from '../backup/service.ts';
import type { SwiftClient } from '../backup/swift-client.ts';
import type { HandlerDeps } from './deps.ts';

export function logMethods(d: HandlerDeps): Record<string, MethodSpec> {
  const service = (method: string) => {
    if (!d.guestLogs || !d.backups) throw new OperationNotSupportedError(method, d.datastore.name);
    return { logs: d.guestLogs, backups: d.backups };
  };
  const flag = (a: Record<string, unknown>, k: string): boolean => {
    const v = a[k];
    if (v === null || v === undefined) return false;
    if (typeof v !== 'boolean') throw new ArgumentTypeError(`guest_log_action() argument '${k}' must be a boolean`);
    return v;
  };
  /** One Swift client per request, made when first needed. */
  const lazySwift = (backups: BackupService, request: Record<string, unknown>) => {
    let client: SwiftClient | null = null;
    return () => (client ??= backups.client(request));
  };
  return {
    guest_log_list: {
      params: [],
      handler: async (_a, ctx) => {
        const { logs, backups } = service(ctx.method);
        return logs.list({ swift: lazySwift(backups, ctx.request), isAdmin: ctx.request['is_admin'] === true }, { log: ctx.log, signal: ctx.signal });
      },
    },
    guest_log_action: {
      params: ['log_name', 'enable', 'disable', 'publish', 'discard'].map((name) => ({ name, required: true })),
      handler: async (a, ctx) => {
        const { logs, backups } = service(ctx.method);
        const name = a['log_name'];
        if (typeof name !== 'string') throw new ArgumentTypeError("guest_log_action() argument 'log_name' must be a string");
        return logs.action(
          { swift: lazySwift(backups, ctx.request), isAdmin: ctx.request['is_admin'] === true },
          { name, enable: flag(a, 'enable'), disable: flag(a, 'disable'), publish: flag(a, 'publish'), discard: flag(a, 'discard') },
          { log: ctx.log, signal: ctx.signal },
        );
      },
    },
  };
}
