/**
 * Full garbage collections once the agent has gone quiet. A guest agent
 * spends nearly all its life idle between Trove's calls, and V8 keeps the
 * young and old generation pages a burst of calls grew until its next GC,
 * which an idle process may not run for a long time: after 20,000 rpc_ping
 * calls that held ~20-30 MiB more resident than a collection leaves. Only
 * after activity, a few passes per quiet spell, so an idle agent costs nothing.
 * The collection is followed by glibc's malloc_trim (process/idle-memory.ts),
 * which hands the pages freed below the top of the C heap back to the kernel,
 * and the spell's last pass by the pageout of the code only start-up or the
 * burst ran.
 */

type V8Gc = (options?: { type: string; execution?: string; flavor?: string }) => void;

let exposed: V8Gc | null | undefined;

/**
 * V8's gc(), exposed at run time (a context created after --expose-gc gets it); null if V8
 * refuses. Fetched once, on first use: each new context costs ~1 ms, and node:v8 ~1-4 ms
 * more to load, which the agent's start (before its first answer) need not pay.
 */
function v8Gc(): V8Gc | null {
  if (exposed !== undefined) return exposed;
  try {
    process.getBuiltinModule('node:v8').setFlagsFromString('--expose-gc');
    const gc: unknown = process.getBuiltinModule('node:vm').runInNewContext('gc');
    exposed = typeof gc === 'function' ? (gc as V8Gc) : null;
  } catch {
    exposed = null;
  }
  return exposed;
}

/**
 * V8's "last resort" full GC, the one that compacts and gives the freed heap pages back, which
 * otherwise wait for V8's memory reducer (~10 s of idleness): after 10,000 pings the first idle
 * pass left RSS at 72.5 MiB with it, 84.8 MiB with a plain full GC. A V8 that does not know the
 * option runs a plain full GC. gc() is fetched at the first collection; if V8 refuses to expose
 * it, collecting does nothing.
 */
export function exposeGc(): () => void {
  return () => v8Gc()?.({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}

/**
 * V8's minor (young generation) GC; a no-op if V8 refuses to expose gc(). A stream of gigabytes through Node
 * leaves each chunk's buffer to die young, but nothing in the small JS heap makes V8 scavenge,
 * and the buffers' memory (external to the heap) starts a full GC only every ~64 MB: a gunzip
 * of 2 GB into a child peaked at 125 MiB RSS, 71 MiB with a minor GC after each 8 MiB, at no
 * CPU cost (1.84 vs 1.63 s). The backup pipelines pace with it. Fetched as exposeGc's is.
 */
export function exposeMinorGc(): () => void {
  return () => v8Gc()?.({ type: 'minor' });
}

/** V8's full GC, then the trim; null when neither is there. */
export function idleCollector(gc: (() => void) | null, trim: (() => boolean) | null): (() => void) | null {
  if (!gc && !trim) return null;
  return () => {
    gc?.();
    trim?.();
  };
}

export interface IdleGc {
  /** Something happened: collect once `quietMs` pass without another touch. */
  touch(): void;
  stop(): void;
}

/**
 * Further passes of a quiet spell, in ms after its first. The first pass does
 * most of the work; the later ones return what only dies later (timers and
 * connections that let go of their buffers, V8's own caches): after 10,000
 * rpc_ping calls the four passes left RSS at 72.5, 72.0, 69.3 and 66.8 MiB.
 */
export const FOLLOW_UPS_MS: readonly number[] = [1500, 4500, 14_500];

/** The agent's gate: 2 MiB (a ping grows it by far less; 10,000 pings by ~30 MiB, a prepare by more). */
export const SPELL_MIN_GROWTH_BYTES = 2 * 1024 * 1024;

/** Whether a spell is worth starting; `settled` after each of its collections. */
export interface SpellGate {
  worthIt(): boolean;
  settled(): void;
}

/**
 * Collections only when the process grew by `minBytes` of resident memory since
 * the last one: what a spell gives back is what a burst of work left, and a
 * lone call leaves nearly nothing. Without it every call that came after a quiet
 * half second paid a spell (the full GC, the trim): a ping every 2 s cost the
 * agent 5.1 ms of CPU per call, 2.5 ms with the gate. Measured after the
 * collection, not after the pageout that may end the spell: the code read back
 * on the next calls does not count as growth.
 */
export function rssGrowthGate(minBytes: number, rss: () => number = () => process.memoryUsage.rss()): SpellGate {
  let base = -Infinity;
  return {
    worthIt: () => rss() - base >= minBytes,
    settled: () => {
      base = rss();
    },
  };
}

/**
 * `quietMs` without a touch starts a spell: one collection, then one at each of
 * `followUpsMs` after it unless touched again (a touch ends the spell and waits
 * for quiet anew), and `afterSpell` once its last collection ran. At most one
 * spell starts per `minIntervalMs` (a full GC of the agent's heap takes a few
 * ms: calls arriving just slower than `quietMs` cost ~1% CPU). With a `gate`, a
 * spell it finds not worth it collects nothing, and still ends in `afterSpell`
 * when no touch cuts it short (the pageout after start-up must not wait for growth).
 */
export function createIdleGc(
  quietMs = 500,
  minIntervalMs = 5000,
  collect: (() => void) | null = exposeGc(),
  followUpsMs: readonly number[] = FOLLOW_UPS_MS,
  afterSpell: (() => void) | null = null,
  gate: SpellGate | null = null,
): IdleGc {
  let timer: NodeJS.Timeout | null = null;
  let last = -Infinity;
  /** Passes run in the current spell; 0 while waiting for quiet. */
  let pass = 0;
  /** Whether the current spell collects (the gate said so at its start). */
  let collecting = true;
  const arm = (ms: number): void => {
    timer = setTimeout(fire, ms);
    timer.unref();
  };
  function fire(): void {
    timer = null;
    if (pass === 0) {
      const wait = last + minIntervalMs - performance.now();
      if (wait > 0) return arm(wait);
      collecting = !gate || gate.worthIt();
      last = performance.now();
    }
    if (collecting) {
      collect!();
      gate?.settled();
    }
    const next = followUpsMs[pass];
    if (next === undefined) {
      pass = 0;
      afterSpell?.();
      return;
    }
    arm(next - (pass > 0 ? followUpsMs[pass - 1]! : 0));
    pass += 1;
  }
  return {
    touch() {
      if (!collect) return;
      if (timer && pass === 0) return void timer.refresh();
      if (timer) clearTimeout(timer);
      pass = 0;
      arm(quietMs);
    },
    stop() {
      if (timer) clearTimeout(timer);
      timer = null;
      pass = 0;
    },
  };
}
