import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { createIdlePageout, loadIdleMemory, rssFileMiB, type PageoutResult } from '../../../src/process/idle-memory.ts';

const MODULE = fileURLToPath(new URL('../../../native/build/idle-memory.node', import.meta.url));

describe('idle memory module', () => {
  it('loads the module npm ci built (native/build/idle-memory.node)', () => {
    const m = loadIdleMemory();
    if (!m.ok) throw new Error(`not loaded: ${m.reason}`);
    expect(typeof m.trim()).toBe('boolean');
  });

  it('says why when the module is not there', () => {
    const m = loadIdleMemory('../../native/build/no-such.node');
    expect(m.ok).toBe(false);
    expect(!m.ok && m.reason).toContain('no-such.node');
  });

  it('returns to the kernel the C heap that freed 64 KiB buffers leave below a live one', () => {
    // A child process, so that this one's heap does not matter: 64 KiB buffers (Node's read
    // size) interleaved with small survivors, the big ones dropped, a full GC, then the trim.
    const script = `
      const { trim } = require(${JSON.stringify(MODULE)});
      const anon = () => Number(/RssAnon:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
      let big = [];
      const pins = [];
      for (let i = 0; i < 1600; i++) { big.push(Buffer.allocUnsafe(65536).fill(1)); pins.push(new ArrayBuffer(256)); }
      big = null;
      (async () => {
        // V8 frees dead buffers' memory on a background sweep: collect until it is done.
        for (let i = 0; i < 5; i++) { gc(); await new Promise((r) => setTimeout(r, 100)); }
        const before = anon();
        const released = trim();
        console.log(JSON.stringify({ before, after: anon(), released, pins: pins.length }));
      })();`;
    const out = JSON.parse(execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' })) as { before: number; after: number; released: boolean };
    expect(out.released).toBe(true);
    // 100 MiB were freed by the GC and stayed resident until the trim.
    expect(out.before - out.after).toBeGreaterThan(60);
  });

  it("pages out the code of Node's binary that start-up ran, and the process runs on", () => {
    // A child on a private copy of the binary, as the agent is on a guest: pages that another
    // process (this one) maps as well are not the child's to give back.
    const dir = mkdtempSync(join(tmpdir(), 'ga-pageout-'));
    try {
      const node = join(dir, 'node');
      copyFileSync(process.execPath, node);
      const script = `
        const { pageout } = require(${JSON.stringify(MODULE)});
        const file = () => Number(/RssFile:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
        const before = file();
        const advised = pageout();
        const after = file();
        // Code paged out runs again, read back in.
        const again = require('zlib').gunzipSync(require('zlib').gzipSync('still here')).toString();
        console.log(JSON.stringify({ before, after, advised, again }));`;
      const out = JSON.parse(execFileSync(node, ['-e', script], { encoding: 'utf8' })) as { before: number; after: number; advised: number; again: string };
      expect(out.advised).toBeGreaterThan(50 * 2 ** 20); // the binary's read-only mappings
      // Measured: 41 -> 7 MiB of file-backed RSS.
      expect(out.before - out.after).toBeGreaterThan(15);
      expect(out.again).toBe('still here');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('pages out at the first quiet spell, then at most once per interval, deferring a spell that ends sooner', () => {
    vi.useFakeTimers();
    let t = 0;
    const calls: number[] = [];
    const paged: PageoutResult[] = [];
    let busy = false;
    const afterSpell = createIdlePageout(() => (calls.push(t), 1), { minIntervalMs: 600_000, now: () => t, rss: () => 40, busy: () => busy, onPaged: (r) => paged.push(r) });
    afterSpell();
    expect(calls).toEqual([0]);
    expect(paged).toEqual([{ before: 40, after: 40 }]);
    // A burst at 5 min, its spell over at 5.5: the pageout waits for the end of the interval.
    t = 330_000;
    afterSpell();
    afterSpell(); // another spell before then: still one deferred pageout
    expect(calls).toEqual([0]);
    expect(vi.getTimerCount()).toBe(1);
    t = 600_000;
    vi.advanceTimersByTime(270_000);
    expect(calls).toEqual([0, 600_000]);
    expect(vi.getTimerCount()).toBe(0);
    // Nothing while a call runs on, and nothing deferred: the spell after the call comes.
    busy = true;
    t = 1_300_000;
    afterSpell();
    expect(calls).toEqual([0, 600_000]);
    expect(vi.getTimerCount()).toBe(0);
    busy = false;
    afterSpell();
    expect(calls).toEqual([0, 600_000, 1_300_000]);
    vi.useRealTimers();
  });

  it('never pages out again where the kernel cannot', () => {
    let tries = 0;
    const afterSpell = createIdlePageout(() => (tries++, -1), { minIntervalMs: 0 });
    afterSpell();
    afterSpell();
    expect(tries).toBe(1);
  });

  it('reads the file-backed RSS from /proc/self/status', () => {
    expect(rssFileMiB(() => 'VmRSS:\t  62000 kB\nRssAnon:\t   17000 kB\nRssFile:\t   45056 kB\n')).toBe(44);
    expect(rssFileMiB(() => 'nothing')).toBeNaN();
    expect(rssFileMiB()).toBeGreaterThan(0);
  });
});
