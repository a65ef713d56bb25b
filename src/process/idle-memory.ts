/**
 * What the idle daemon hands back to the kernel besides V8's garbage, through
 * the project's own Node-API module (native/idle-memory.c, built by
 * scripts/build-native.mjs into native/build/; dist/ and the release carry it
 * at the same relative path).
 *
 * trim: glibc's malloc_trim(0). Node's 64 KiB socket and pipe read buffers
 * come from glibc's brk heap, and glibc gives back only the top of that heap:
 * after 10,000 rpc_ping calls (on the build that still kept reply bodies 5 s,
 * rpc/server.ts) ~45 of the agent's ~65 MiB of anonymous memory were free
 * chunks held below a live one. A trim after each idle GC returns them.
 *
 * pageout: MADV_PAGEOUT over the read-only file mappings. Of an idle agent's
 * ~61 MiB, 44 were pages of Node's own binary, most of them code that only
 * start-up ran (the module loader, the bootstrap, the ESM and config paths):
 * paged out, an idle agent held 28-33 MiB, 41 MiB after another 3,000 pings
 * (file-backed 11-15, then 23.6 MiB), and the first call after it took 36 ms
 * instead of 2 (its code read back in). Worth once start-up and each long
 * quiet spell are over, not after every call: see createIdlePageout.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

export interface IdleMemoryModule {
  /** malloc_trim(0): true when some memory went back to the kernel. */
  trim: () => boolean;
  /** MADV_PAGEOUT over the read-only file mappings: the bytes advised, -1 where the kernel cannot. */
  pageout: () => number;
}

export type IdleMemory = ({ ok: true } & IdleMemoryModule) | { ok: false; reason: string };

/** From src/process/ (and dist/src/process/) to native/build/. */
const MODULE = '../../native/build/idle-memory.node';

export function loadIdleMemory(path = MODULE): IdleMemory {
  try {
    const m = createRequire(import.meta.url)(path) as Partial<Record<keyof IdleMemoryModule, unknown>>;
    for (const fn of ['trim', 'pageout'] as const) if (typeof m[fn] !== 'function') return { ok: false, reason: `${path} has no ${fn}()` };
    const { trim, pageout } = m as IdleMemoryModule;
    return { ok: true, trim: () => trim(), pageout: () => pageout() };
  } catch (e) {
    return { ok: false, reason: (e as Error).message.split('\n')[0] ?? String(e) };
  }
}

/** A process's file-backed resident memory in MiB (RssFile in /proc/<pid>/status; this one's by default), NaN where there is none. */
export function rssFileMiB(status = (): string => readFileSync('/proc/self/status', 'utf8')): number {
  try {
    const kb = /^RssFile:\s+(\d+) kB/m.exec(status())?.[1];
    return kb === undefined ? NaN : Number(kb) / 1024;
  } catch {
    return NaN;
  }
}

/** Once per this long at most: each pageout costs the next calls the reading back of their code. */
export const PAGEOUT_MIN_INTERVAL_MS = 10 * 60_000;

export interface PageoutResult {
  /** File-backed RSS before and after, MiB. */
  before: number;
  after: number;
}

export interface IdlePageoutOptions {
  /** A call is being handled: its code would only be read back (the spell after it pages out). */
  busy?: () => boolean;
  /** Told each pageout's file-backed RSS before and after. */
  onPaged?: (r: PageoutResult) => void;
  minIntervalMs?: number;
  now?: () => number;
  rss?: () => number;
}

/**
 * The pageout as the end of a quiet spell runs it (createIdleGc's
 * afterSpell): the first time (start-up's code), then at most once per
 * `minIntervalMs`, so that a guest called every few minutes reads its code
 * back at most that often; a spell that ends sooner defers it to the end of
 * the interval, so the code a burst ran is not kept for good. Never while
 * `busy`, never again where the kernel cannot.
 */
export function createIdlePageout(pageout: () => number, o: IdlePageoutOptions = {}): () => void {
  const { busy = () => false, onPaged, minIntervalMs = PAGEOUT_MIN_INTERVAL_MS, now = () => performance.now(), rss = rssFileMiB } = o;
  let last = -Infinity;
  let unsupported = false;
  let deferred: NodeJS.Timeout | null = null;
  const afterSpell = (): void => {
    if (unsupported || busy()) return;
    const wait = last + minIntervalMs - now();
    if (wait > 0) {
      deferred ??= setTimeout(() => {
        deferred = null;
        afterSpell();
      }, wait).unref();
      return;
    }
    last = now();
    const before = rss();
    if (pageout() < 0) {
      unsupported = true;
      return;
    }
    onPaged?.({ before, after: rss() });
  };
  return afterSpell;
}
