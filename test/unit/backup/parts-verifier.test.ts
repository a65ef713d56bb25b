// The restore's check of downloaded bytes against the md5 Swift keeps for each part.
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PartsVerifier } from '../../../src/backup/swift-client.ts';

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const partsOf = (...bufs: Buffer[]) => bufs.map((b) => ({ bytes: b.length, etag: md5(b) }));
/** Feeds `data` in chunks of `size` bytes; the first reason given, or that of the end. */
function feed(v: PartsVerifier, data: Buffer, size: number): string | null {
  for (let at = 0; at < data.length; at += size) {
    const why = v.update(data.subarray(at, at + size));
    if (why) return why;
  }
  return v.end();
}

describe('PartsVerifier', () => {
  const a = randomBytes(1000);
  const b = randomBytes(777);
  const c = randomBytes(1);
  const all = Buffer.concat([a, b, c]);

  it('accepts the parts whatever the chunks (across boundaries, one byte at a time, all at once)', () => {
    for (const size of [1, 7, 999, 1000, 1001, 1777, 5000]) expect(feed(new PartsVerifier(partsOf(a, b, c)), all, size)).toBeNull();
  });

  it('names the first part that differs as soon as it has passed, and says nothing more after', () => {
    const bad = Buffer.from(all);
    bad[1200]! ^= 0x80;
    const v = new PartsVerifier(partsOf(a, b, c));
    expect(v.update(bad.subarray(0, 1500))).toBeNull(); // segment 2 is not whole yet
    expect(v.update(bad.subarray(1500, 1777))).toMatch(/^segment 2 of 3 \(777 bytes\) has md5 [0-9a-f]{32}, Swift holds [0-9a-f]{32} for it$/);
    expect(v.update(bad.subarray(1777))).toBeNull();
    expect(v.end()).toBeNull();
  });

  it('names the part a byte offset falls in', () => {
    const v = new PartsVerifier(partsOf(a, b, c));
    expect([0, 999, 1000, 1776, 1777, 1778].map((o) => v.partAt(o))).toEqual(['segment 1 of 3', 'segment 1 of 3', 'segment 2 of 3', 'segment 2 of 3', 'segment 3 of 3', null]);
  });

  it('a single object is "the object"', () => {
    const bad = Buffer.from(a);
    bad[0]! ^= 1;
    expect(feed(new PartsVerifier(partsOf(a)), bad, 64)).toMatch(/^the object \(1000 bytes\) has md5/);
  });

  it('bytes that end early or run on are refused', () => {
    expect(feed(new PartsVerifier(partsOf(a, b)), all.subarray(0, 1500), 100)).toBe('the bytes end 277 bytes before the end of segment 2 of 2');
    expect(feed(new PartsVerifier(partsOf(a, b)), all, 100)).toBe('1 bytes more than the 2 segments hold');
  });

  it('parts of no bytes still match the md5 of nothing; nothing at all is whole', () => {
    const empty = Buffer.alloc(0);
    expect(feed(new PartsVerifier(partsOf(a, empty, b)), Buffer.concat([a, b]), 300)).toBeNull();
    expect(new PartsVerifier(partsOf(empty)).end()).toBeNull();
    expect(new PartsVerifier([]).end()).toBeNull();
    expect(new PartsVerifier([{ bytes: 0, etag: 'f'.repeat(32) }]).end()).toMatch(/^the object \(0 bytes\) has md5 d41d8cd98f00b204e9800998ecf8427e/);
  });
});
