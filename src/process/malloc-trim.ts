/**
 * glibc's malloc_trim(0) through the project's own Node-API module
 * (native/malloc-trim.c, built by scripts/build-native.mjs into
 * native/build/; dist/ and the release carry it at the same relative path).
 * Node's 64 KiB socket and pipe read buffers come from glibc's brk heap, and
 * glibc gives back only the top of that heap: after 10,000 rpc_ping calls (on
 * the build that still kept reply bodies 5 s, rpc/server.ts) ~45
 * of the agent's ~65 MiB of anonymous memory were free chunks held below a
 * live one. A trim after the idle GC (process/idle-gc.ts) returns them.
 */
import { createRequire } from 'node:module';

export type MallocTrim = { ok: true; trim: () => boolean } | { ok: false; reason: string };

/** From src/process/ (and dist/src/process/) to native/build/. */
const MODULE = '../../native/build/malloc-trim.node';

export function loadMallocTrim(path = MODULE): MallocTrim {
  try {
    const m = createRequire(import.meta.url)(path) as { trim?: unknown };
    if (typeof m.trim !== 'function') return { ok: false, reason: `${path} has no trim()` };
    const trim = m.trim as () => boolean;
    return { ok: true, trim: () => trim() };
  } catch (e) {
    return { ok: false, reason: (e as Error).message.split('\n')[0] ?? String(e) };
  }
}
