import { afterEach, describe, expect, it, vi } from 'vitest';
import { createIdleGc, exposeGc } from '../../../src/process/idle-gc.ts';

describe('idle GC', () => {
  afterEach(() => void vi.useRealTimers());

  it("gets V8's gc() at run time on this Node", () => {
    const gc = exposeGc();
    expect(typeof gc).toBe('function');
    gc!();
  });

  it('collects once after a quiet spell, never while touched, at most once per interval', () => {
    vi.useFakeTimers();
    const collect = vi.fn();
    const idle = createIdleGc(500, 5000, collect);
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
});
