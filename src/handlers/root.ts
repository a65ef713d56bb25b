/** Root user methods (trove/guestagent/datastore/manager.py enable_root ...). */
import { OperationNotSupportedError } from '../errors.ts';
import type { Root } from '../datastore.ts';
import type { MethodSpec } from '../rpc/dispatcher.ts';
import type { HandlerDeps } from './deps.ts';
import { optStr, serializeUser } from './wire.ts';

export function rootMethods(d: HandlerDeps): Record<string, MethodSpec> {
  const root = (method: string): Root => {
    if (!d.datastore.root) throw new OperationNotSupportedError(method, d.datastore.name);
    return d.datastore.root;
  };
  const enable = async (password: string | null, method: string, ctx: Parameters<MethodSpec['handler']>[1]) => {
    const user = await root(method).enableRoot(password, { log: ctx.log, signal: ctx.signal });
    return serializeUser({ ...user, isRoot: true });
  };
  return {
    enable_root: { params: [], handler: (_a, ctx) => enable(null, ctx.method, ctx) },
    enable_root_with_password: {
      params: [{ name: 'root_password' }],
      handler: (a, ctx) => enable(optStr(a, 'root_password'), ctx.method, ctx),
    },
    disable_root: { params: [], handler: async (_a, ctx) => root(ctx.method).disableRoot({ log: ctx.log, signal: ctx.signal }) },
    is_root_enabled: { params: [], handler: (_a, ctx) => root(ctx.method).isRootEnabled({ log: ctx.log, signal: ctx.signal }) },
    get_root_password: {
      params: [],
      handler: async (_a, ctx) => {
        const r = root(ctx.method);
        if (!r.getRootPassword) throw new OperationNotSupportedError(ctx.method, d.datastore.name);
        return r.getRootPassword({ log: ctx.log, signal: ctx.signal });
      },
    },
  };
}
