import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadMallocTrim } from '../../../src/process/malloc-trim.ts';

const MODULE = fileURLToPath(new URL('../../../native/build/malloc-trim.node', import.meta.url));

describe('malloc_trim', () => {
  it('loads the module npm ci built (native/build/malloc-trim.node)', () => {
    const m = loadMallocTrim();
    if (!m.ok) throw new Error(`not loaded: ${m.reason}`);
    expect(typeof m.trim()).toBe('boolean');
  });

  it('says why when the module is not there', () => {
    const m = loadMallocTrim('../../native/build/no-such.node');
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
});
