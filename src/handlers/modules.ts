/** module_list, module_apply, module_remove: Trove's instance modules (src/modules.ts). */
import { ArgumentTypeError, OperationNotSupportedError } from '../errors.ts';
import type { ModuleManager } from '../modules.ts';
import type { MethodSpec } from '../rpc/dispatcher.ts';
import type { HandlerDeps } from './deps.ts';

export function moduleMethods(d: HandlerDeps): Record<string, MethodSpec> {
  const manager = (method: string): ModuleManager => {
    if (!d.modules) throw new OperationNotSupportedError(method, d.datastore.name);
    return d.modules;
  };
  return {
    module_list: {
      params: [{ name: 'include_contents' }],
      handler: async (a, ctx) => {
        const m = manager(ctx.method);
        return m.list({ isAdmin: ctx.request['is_admin'] === true, includeContents: Boolean(a['include_contents']) });
      },
    },
    module_apply: {
      params: [{ name: 'modules' }],
      handler: async (a, ctx) => {
        const m = manager(ctx.method);
        const modules = a['modules'] ?? null;
        // Trove's agent iterates what it is given: None is Python's TypeError there too.
        if (!Array.isArray(modules)) throw new ArgumentTypeError("module_apply() argument 'modules' must be a list");
        return m.apply(modules);
      },
    },
    module_remove: {
      params: [{ name: 'module' }],
      handler: async (a, ctx) => {
        manager(ctx.method).remove(a['module'] ?? null);
        return null;
      },
    },
  };
}
