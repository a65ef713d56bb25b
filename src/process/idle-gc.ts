/**
 * One full garbage collection once the agent has gone quiet. A guest agent
 * spends nearly all its life idle between Trove's calls, and V8 keeps the
 * young and old generation pages a burst of calls grew until its next GC,
 * which an idle process may not run for a long time: after 20,000 rpc_ping
 * calls that held ~20-30 MiB more resident than a collection leaves. Only
 * after activity, once per quiet spell, so an idle agent costs nothing.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** V8's gc(), exposed at run time (a context created after --expose-gc gets it); null if V8 refuses. */
export function exposeGc(): (() => void) | null {
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    return typeof gc === 'function' ? (gc as () => void) : null;
  } catch {
    return null;
  }
}

export interface IdleGc {
  /** Something happened: collect once `quietMs` pass without another touch. */
  touch(): void;
  stop(): void;
}

/**
 * `quietMs` without a touch starts the collection; at most one per `minIntervalMs` (a full GC of
 * the agent's heap takes a few ms: calls arriving just slower than `quietMs` cost ~1% CPU).
 */
export function createIdleGc(quietMs = 500, minIntervalMs = 5000, collect: (() => void) | null = exposeGc()): IdleGc {
  const gc = collect;
  let timer: NodeJS.Timeout | null = null;
  let last = -Infinity;
  const fire = () => {
    const wait = last + minIntervalMs - performance.now();
    if (wait > 0) {
      timer = setTimeout(fire, wait);
      timer.unref();
      return;
    }
    timer = null;
    last = performance.now();
    gc!();
  };
  return {
    touch() {
      if (!gc) return;
      if (timer) timer.refresh();
      else {
        timer = setTimeout(fire, quietMs);
        timer.unref();
      }
    },
    stop() {
      if (timer) clearTimeout(timer);
      timer = null;
    },
  };
}
