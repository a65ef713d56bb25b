import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createIdleGc, exposeGc, idleCollector, rssGrowthGate } from '../../../src/process/idle-gc.ts';

describe('idle GC', () => {
  afterEach(() => void vi.useRealTimers());

  it("gets V8's gc() at run time on this Node, at the first collection", () => {
    // A child without --expose-gc: only a gc() fetched at run time can free this garbage at once.
    const script = `
      const { exposeGc } = await import(${JSON.stringify(fileURLToPath(new URL('../../../src/process/idle-gc.ts', import.meta.url)))});
      const collect = exposeGc();
      const loaded = typeof globalThis.gc;
      let keep = [];
      for (let i = 0; i < 300000; i++) keep.push({ i, s: 'x' + i, a: [i, i + 1] });
      keep = null;
      const before = process.memoryUsage().heapUsed / 1048576;
      collect();
      console.log(JSON.stringify({ loaded, before, after: process.memoryUsage().heapUsed / 1048576 }));`;
    const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as { loaded: string; before: number; after: number };
    // Nothing is fetched before the first collection (the agent's start does not pay for it).
    expect(out.loaded).toBe('undefined');
    expect(out.before - out.after).toBeGreaterThan(20);
  });

  it('collects in the flavour that gives the freed heap back, which a plain full GC keeps', () => {
    // A child process, so that this one's heap does not matter.
    const script = `
      const { exposeGc } = await import(${JSON.stringify(fileURLToPath(new URL('../../../src/process/idle-gc.ts', import.meta.url)))});
      const collect = exposeGc();
      const mib = () => process.memoryUsage().heapTotal / 1048576;
      let keep = [];
      for (let i = 0; i < 300000; i++) keep.push({ i, s: 'x' + i, a: [i, i + 1] });
      keep = null;
      globalThis.gc();
      const plain = mib();
      collect();
      console.log(JSON.stringify({ plain, idle: mib() }));`;
    const out = JSON.parse(execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8' })) as { plain: number; idle: number };
    // Measured: 73.9 MiB of heap after the plain full GC, 6.0 after ours.
    expect(out.plain - out.idle).toBeGreaterThan(30);
  });

  it("a minor GC frees the buffers a stream dropped, which V8 would keep until its external-memory GC", () => {
    const script = `
      const { exposeMinorGc } = await import(${JSON.stringify(fileURLToPath(new URL('../../../src/process/idle-gc.ts', import.meta.url)))});
      const minor = exposeMinorGc();
      const mib = () => process.memoryUsage().arrayBuffers / 1048576;
      for (let i = 0; i < 40; i++) Buffer.alloc(1 << 20, i).at(-1); // 40 MiB of chunks, dropped as a stream drops them
      const before = mib();
      minor();
      // V8 frees the dead buffers' memory on a background thread after the scavenge: on a busy
      // machine the count can lag the GC by a moment.
      for (let i = 0; i < 100 && mib() >= 5; i++) await new Promise((r) => setTimeout(r, 20));
      console.log(JSON.stringify({ before, after: mib() }));`;
    const out = JSON.parse(execFileSync(process.execPath, ['--max-semi-space-size=1', '--input-type=module', '-e', script], { encoding: 'utf8' })) as { before: number; after: number };
    expect(out.before).toBeGreaterThan(30);
    expect(out.after).toBeLessThan(5);
  });

  it('collects once after a quiet spell, never while touched, at most once per interval', () => {
    vi.useFakeTimers();
    const collect = vi.fn();
    const idle = createIdleGc(500, 5000, collect, []);
    idle.touch();
    vi.advanceTimersByTime(400);
    idle.touch(); // activity again: the quiet spell starts over
    vi.advanceTimersByTime(400);
    expect(collect).not.toHaveBeenCalled();
    vi.advanceTimersByTime(100);
    expect(collect).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(60_000); // idle: nothing more to collect
    expect(collect).toHaveBeenCalledTimes(1);
    idle.touch();
    vi.advanceTimersByTime(500);
    expect(collect).toHaveBeenCalledTimes(2);
    idle.touch(); // a second quiet spell right after: waits for the interval
    vi.advanceTimersByTime(500);
    expect(collect).toHaveBeenCalledTimes(2);
    vi.advanceTimersByTime(4500);
    expect(collect).toHaveBeenCalledTimes(3);
    idle.stop();
  });

  it('does nothing without a gc', () => {
    vi.useFakeTimers();
    const idle = createIdleGc(500, 5000, null);
    idle.touch();
    expect(vi.getTimerCount()).toBe(0);
    idle.stop();
  });

  it('collects, then trims; nothing to run without either', () => {
    const order: string[] = [];
    const both = idleCollector(() => void order.push('gc'), () => (order.push('trim'), true));
    both!();
    expect(order).toEqual(['gc', 'trim']);
    const trimOnly = idleCollector(null, () => (order.push('trim'), false));
    trimOnly!();
    expect(order).toEqual(['gc', 'trim', 'trim']);
    expect(idleCollector(null, null)).toBeNull();
  });

  it('follows a first collection with more while quiet; a touch ends the spell', () => {
    vi.useFakeTimers();
    const collect = vi.fn();
    /** Advance the clock by each step's ms; the collections counted so far must then be the step's count. */
    const timeline = (steps: Array<[ms: number, calls: number]>) => {
      for (const [ms, calls] of steps) {
        vi.advanceTimersByTime(ms);
        expect(collect).toHaveBeenCalledTimes(calls);
      }
    };
    const idle = createIdleGc(500, 5000, collect, [1500, 4500, 14_500]);
    idle.touch();
    // quiet 0.5 s, then passes 1.5, 4.5 and 14.5 s after the first; then nothing: an idle agent costs nothing
    timeline([[500, 1], [1500, 2], [2999, 2], [1, 3], [10_000, 4], [600_000, 4]]);
    expect(vi.getTimerCount()).toBe(0);

    idle.touch();
    timeline([[500, 5]]);
    idle.touch(); // busy again before the first follow-up: the spell ends, quiet is awaited anew,
    // and the next spell starts 5 s after the last one did
    timeline([[1500, 5], [3499, 5], [1, 6], [1500, 7]]);
    idle.stop();
    timeline([[60_000, 7]]);
  });

  it("runs afterSpell once a spell's last pass is over, not when a touch ends the spell before it", () => {
    vi.useFakeTimers();
    const after = vi.fn();
    const idle = createIdleGc(500, 5000, vi.fn(), [1500, 4500], after);
    idle.touch();
    vi.advanceTimersByTime(500 + 4499);
    expect(after).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(after).toHaveBeenCalledTimes(1);
    idle.touch();
    vi.advanceTimersByTime(500 + 1500); // two passes, then busy again
    idle.touch();
    vi.advanceTimersByTime(500);
    idle.touch();
    vi.advanceTimersByTime(100);
    expect(after).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(60_000); // the next spell runs to its end
    expect(after).toHaveBeenCalledTimes(2);
    idle.stop();
  });

  it('with a gate: no collections while the process has not grown since the last one; the spell still ends in afterSpell', () => {
    vi.useFakeTimers();
    let rss = 100;
    const gate = rssGrowthGate(10, () => rss);
    const collect = vi.fn();
    const after = vi.fn();
    const idle = createIdleGc(500, 5000, collect, [1500], after, gate);
    idle.touch(); // the first spell always collects (start-up's garbage)
    vi.advanceTimersByTime(2000);
    expect([collect.mock.calls.length, after.mock.calls.length]).toEqual([2, 1]);
    rss = 109; // a lone call: grown by less than the gate's 10
    vi.advanceTimersByTime(10_000);
    idle.touch();
    vi.advanceTimersByTime(60_000);
    expect([collect.mock.calls.length, after.mock.calls.length]).toEqual([2, 2]);
    expect(vi.getTimerCount()).toBe(0);
    rss = 110; // a burst
    idle.touch();
    vi.advanceTimersByTime(2000);
    expect([collect.mock.calls.length, after.mock.calls.length]).toEqual([4, 3]);
    idle.stop();
  });
});
