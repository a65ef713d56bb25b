// Trove's per-instance envelope encryption: the parts the capture does not pin down.
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createSecureCodec, deriveKey, pooledRandomIv } from '../../../src/rpc/secure-codec.ts';

describe('pooled IVs', () => {
  it('never hands out the same bytes twice, and a refill leaves earlier IVs untouched', () => {
    const next = pooledRandomIv();
    const ivs = Array.from({ length: 600 }, () => next(16)); // crosses two refills of 256
    const copies = ivs.map((iv) => Buffer.from(iv));
    expect(new Set(copies.map((b) => b.toString('hex'))).size).toBe(600);
    next(16);
    for (let i = 0; i < ivs.length; i++) expect(ivs[i]!.equals(copies[i]!)).toBe(true);
    expect(ivs.every((iv) => iv.length === 16)).toBe(true);
  });

  it('each encryption of the same value carries a fresh IV', () => {
    const codec = createSecureCodec('k');
    const a = Buffer.from(codec.encrypt({ x: 1 }), 'base64');
    const b = Buffer.from(codec.encrypt({ x: 1 }), 'base64');
    expect(a.subarray(0, 16).equals(b.subarray(0, 16))).toBe(false);
    expect(codec.decrypt(a.toString('base64'))).toEqual({ x: 1 });
  });
});

describe('decrypt', () => {
  it('decodes UTF-8 that a peer did not escape, with characters split across cipher blocks', () => {
    const key = deriveKey('k');
    const iv = Buffer.alloc(16, 7);
    // 'é' is 2 bytes: 15 ASCII bytes then 'é' puts its bytes on both sides of the first block boundary.
    const text = JSON.stringify({ name: 'abcdefghi' + 'é'.repeat(40) + '€🙂' });
    const c = createCipheriv('aes-256-cbc', key, iv);
    const sealed = Buffer.concat([iv, c.update(text, 'utf8'), c.final()]).toString('base64');
    expect(createSecureCodec('k').decrypt(sealed)).toEqual(JSON.parse(text));
  });

  it('writes what Trove writes: ASCII-only JSON with Python separators, padded to whole blocks', () => {
    const key = deriveKey('k');
    const sealed = Buffer.from(createSecureCodec('k').encrypt({ a: [1, 'é'] }), 'base64');
    const d = createDecipheriv('aes-256-cbc', key, sealed.subarray(0, 16));
    const plain = Buffer.concat([d.update(sealed.subarray(16)), d.final()]).toString('latin1');
    expect(plain).toBe('{"a": [1, "\\u00e9"]}');
    expect((sealed.length - 16) % 16).toBe(0);
  });
});
