/**
 * Datastore-independent methods: rpc_ping, get_hwinfo, get_diagnostics,
 * get_filesystem_stats. Shapes are what Trove's management views read
 * (trove/extensions/mgmt/instances/views.py: hwinfo mem_total/num_cpus,
 * diagnostics version, fd_size, vm_size, vm_peak, vm_rss, vm_hwm, threads; dbaas.get_filesystem_volume_stats).
 */
import { readFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import type { MethodSpec } from '../rpc/dispatcher.ts';
import type { HandlerDeps } from './deps.ts';

export const AGENT_VERSION = '0.1.0';

/** A /proc key-value file ("Key:   1234 kB") as numbers (kB for memory). */
export async function readProcNumbers(path: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const line of (await readFile(path, 'utf8')).split('\n')) {
    const m = /^([\w()]+):\s+(\d+)/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

export function statusMethods(d: HandlerDeps): Record<string, MethodSpec> {
  return {
    rpc_ping: { params: [], handler: async () => true },
    get_hwinfo: {
      params: [],
      handler: async () => {
        const mem = await readProcNumbers('/proc/meminfo');
        return { mem_total: mem['MemTotal'] ?? 0, num_cpus: cpus().length };
      },
    },
    get_diagnostics: {
      params: [],
      handler: async () => {
        const s = await readProcNumbers('/proc/self/status');
        return {
          version: AGENT_VERSION,
          fd_size: s['FDSize'] ?? 0,
          vm_size: s['VmSize'] ?? 0,
          vm_peak: s['VmPeak'] ?? 0,
          vm_rss: s['VmRSS'] ?? 0,
          vm_hwm: s['VmHWM'] ?? 0,
          threads: s['Threads'] ?? 0,
        };
      },
    },
    get_filesystem_stats: {
      params: [{ name: 'fs_path', required: true }],
      // Trove's manager ignores fs_path (its API sends None) and reports the datastore's mount point.
      handler: async () => d.filesystemStats(d.datastore.mountPoint),
    },
  };
}
