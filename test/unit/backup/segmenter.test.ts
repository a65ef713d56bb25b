import { createHash } from 'node:crypto';
import { Readable, type Readable as ReadableT } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { Segmenter, segmentName } from '../../../src/backup/segmenter.ts';
import type { SwiftClient } from '../../../src/backup/swift-client.ts';
import { AbortedError, ChecksumMismatchError } from '../../../src/errors.ts';

/** A fake Swift that stores objects in memory and answers with their md5 (or a scripted etag). */
function fakeSwift(opts: { badEtagFor?: string; slowFor?: string } = {}) {
  const objects = new Map<string, Buffer>();
  const inFlight = new Set<string>();
  const client: Pick<SwiftClient, 'putObject'> = {
    async putObject(container, name, body, o = {}) {
      inFlight.add(name);
      const chunks: Buffer[] = [];
      try {
        for await (const c of body as ReadableT) {
          if (o.signal?.aborted) throw new AbortedError();
          chunks.push(c as Buffer);
        }
      } finally {
        inFlight.delete(name);
      }
      const data = Buffer.concat(chunks);
      objects.set(`${container}/${name}`, data);
      const md5 = createHash('md5').update(data).digest('hex');
      return { etag: opts.badEtagFor === name ? '0'.repeat(32) : md5 };
    },
  };
  return { client, objects, inFlight };
}

function source(total: number, chunk: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= total) return void this.push(null);
      const n = Math.min(chunk, total - sent);
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) b[i] = (sent + i) % 251;
      sent += n;
      this.push(b);
    },
  });
}

describe('segmentName', () => {
  it("is Trove's <id up to the first dot>_%08d", () => {
    expect(segmentName('3f1c', 0)).toBe('3f1c_00000000');
    expect(segmentName('abc.xbstream.gz', 12)).toBe('abc_00000012');
  });
});

describe('Segmenter', () => {
  it.each([
    ['exact multiple', 3000, 1000, 7, [1000, 1000, 1000]],
    ['remainder', 2500, 1000, 333, [1000, 1000, 500]],
    ['chunks bigger than a segment', 2500, 1000, 2500, [1000, 1000, 500]],
    ['single short segment', 10, 1000, 4, [10]],
    ['one byte segments', 3, 1, 2, [1, 1, 1]],
  ])('cuts at segment boundaries (%s)', async (_n, total, max, chunk, sizes) => {
    const { client, objects } = fakeSwift();
    const seg = new Segmenter({ client, container: 'c', prefix: 'b1', segmentMaxSize: max });
    await pipeline(source(total, chunk), seg);
    expect(seg.segments.map((s) => s.size_bytes)).toEqual(sizes);
    expect(seg.segments.map((s) => s.path)).toEqual(sizes.map((_, i) => `c/b1_${String(i).padStart(8, '0')}`));
    expect(seg.bytes).toBe(total);
    const joined = Buffer.concat(seg.segments.map((s) => objects.get(s.path)!));
    expect(joined.equals(Buffer.concat(Array.from({ length: total }, (_, i) => Buffer.of(i % 251))))).toBe(true);
    for (const s of seg.segments) expect(s.etag).toBe(createHash('md5').update(objects.get(s.path)!).digest('hex'));
  });

  it('uploads an empty stream as one empty segment', async () => {
    const { client } = fakeSwift();
    const seg = new Segmenter({ client, container: 'c', prefix: 'b', segmentMaxSize: 10 });
    await pipeline(Readable.from([]), seg);
    expect(seg.segments).toEqual([{ name: 'b_00000000', path: 'c/b_00000000', etag: 'd41d8cd98f00b204e9800998ecf8427e', size_bytes: 0 }]);
  });

  it('fails when Swift answers an ETag other than the md5 of what was sent', async () => {
    const { client } = fakeSwift({ badEtagFor: 'b_00000001' });
    const seg = new Segmenter({ client, container: 'c', prefix: 'b', segmentMaxSize: 100 });
    await expect(pipeline(source(350, 50), seg)).rejects.toBeInstanceOf(ChecksumMismatchError);
    expect(seg.segments).toHaveLength(1);
    // The next segments may have started while segment 1's answer was awaited; all are cleanup candidates.
    expect(seg.started.slice(0, 2)).toEqual(['b_00000000', 'b_00000001']);
    expect(seg.started.length).toBeLessThanOrEqual(4);
  });

  it("streams the next segment while the previous one's PUT is still finishing, and records them in order", async () => {
    const answers: Array<() => void> = [];
    const order: string[] = [];
    const client: Pick<SwiftClient, 'putObject'> = {
      async putObject(_container, name, body) {
        const h = createHash('md5');
        for await (const c of body as ReadableT) h.update(c as Buffer);
        order.push(`body-end ${name}`);
        // Swift answers segment 0 only after segment 1's body has been sent completely.
        if (name === 'b_00000000') await new Promise<void>((r) => answers.push(r));
        if (name === 'b_00000001') answers.shift()?.();
        return { etag: h.digest('hex') };
      },
    };
    const seg = new Segmenter({ client, container: 'c', prefix: 'b', segmentMaxSize: 100 });
    await pipeline(source(250, 25), seg);
    expect(order.slice(0, 2)).toEqual(['body-end b_00000000', 'body-end b_00000001']);
    expect(seg.segments.map((s) => s.name)).toEqual(['b_00000000', 'b_00000001', 'b_00000002']);
  });

  it('keeps memory bounded: a stalled upload stops the source', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let consumed = 0;
    const client: Pick<SwiftClient, 'putObject'> = {
      async putObject(_c, _n, body) {
        for await (const c of body as ReadableT) {
          consumed += (c as Buffer).length;
          await gate; // the server stops reading
        }
        return { etag: 'x' };
      },
    };
    let produced = 0;
    const src = new Readable({
      read() {
        produced += 16 * 1024;
        this.push(Buffer.alloc(16 * 1024));
      },
    });
    const seg = new Segmenter({ client, container: 'c', prefix: 'b', segmentMaxSize: 1 << 30 });
    const p = pipeline(src, seg).catch(() => {});
    await new Promise((r) => setTimeout(r, 100));
    // Only stream buffers (a few 64 KiB high-water marks), not the 1 GiB segment.
    expect(produced).toBeLessThan(512 * 1024);
    expect(consumed).toBeGreaterThan(0);
    src.destroy();
    release();
    await p;
  });

  it('abort destroys the in-flight upload', async () => {
    const { client, inFlight } = fakeSwift();
    const ac = new AbortController();
    const src = new Readable({ read() {} });
    const seg = new Segmenter({ client, container: 'c', prefix: 'b', segmentMaxSize: 1000, signal: ac.signal });
    const p = pipeline(src, seg, { signal: ac.signal });
    src.push(Buffer.alloc(10));
    await new Promise((r) => setTimeout(r, 10));
    expect(inFlight.has('b_00000000')).toBe(true);
    ac.abort();
    await expect(p).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 10));
    expect(inFlight.size).toBe(0);
    expect(seg.segments).toEqual([]);
  });
});
