import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createDecryptor, createEncryptor } from '../../../src/backup/encrypt.ts';
import { CODEC_MAGIC, createCompressor, createDecompressor } from '../../../src/backup/compress.ts';

async function run(input: Buffer, ...stages: NodeJS.ReadWriteStream[]): Promise<Buffer> {
  const out: Buffer[] = [];
  const parts: Buffer[] = [];
  for (let i = 0; i < input.length; i += 1000) parts.push(input.subarray(i, i + 1000));
  await (pipeline as (...s: unknown[]) => Promise<void>)(Readable.from(parts), ...stages, new Writable({
    write(c: Buffer, _e, cb) { out.push(c); cb(); },
  }));
  return Buffer.concat(out);
}

describe('encrypt', () => {
  it('round-trips with the OpenSSL header', async () => {
    const data = randomBytes(100_003);
    const enc = await run(data, createEncryptor('k3y'));
    expect(enc.subarray(0, 8).toString('latin1')).toBe('Salted__');
    expect(enc.length).toBe(16 + Math.ceil((data.length + 1) / 16) * 16);
    expect((await run(enc, createDecryptor('k3y'))).equals(data)).toBe(true);
  });

  it('round-trips an empty stream', async () => {
    const enc = await run(Buffer.alloc(0), createEncryptor('k'));
    expect(enc.length).toBe(32);
    expect((await run(enc, createDecryptor('k'))).length).toBe(0);
  });

  it('a wrong key fails', async () => {
    const enc = await run(randomBytes(1000), createEncryptor('right'));
    await expect(run(enc, createDecryptor('wrong'))).rejects.toThrow();
  });

  it('refuses data without the Salted__ header', async () => {
    await expect(run(randomBytes(100), createDecryptor('k'))).rejects.toThrow(/Salted__/);
  });

  it('gzip → encrypt → decrypt → gunzip round trip', async () => {
    const data = Buffer.from('abc'.repeat(50_000));
    const enc = await run(data, createCompressor(), createEncryptor('p'));
    expect((await run(enc, createDecryptor('p'), createDecompressor())).equals(data)).toBe(true);
  });

  it("passes a stream in the clear through when it starts with the codec's magic (Trove's tool names such backups .enc), with or without a key", async () => {
    const data = Buffer.from('abc'.repeat(50_000));
    const gz = await run(data, createCompressor());
    for (const key of ['p', null]) {
      let told = 0;
      const out = await run(gz, createDecryptor(key, { plainMagic: CODEC_MAGIC.gzip, onPlain: () => told++ }), createDecompressor());
      expect(out.equals(data)).toBe(true);
      expect(told).toBe(1);
    }
  });

  it('without a key, an encrypted stream fails saying so; other data still fails on its header', async () => {
    const enc = await run(await run(Buffer.from('x'.repeat(5000)), createCompressor()), createEncryptor('p'));
    await expect(run(enc, createDecryptor(null, { plainMagic: CODEC_MAGIC.gzip }))).rejects.toThrow(/encrypted and no backup encryption key is configured/);
    await expect(run(Buffer.from('PK\x03\x04'.repeat(10)), createDecryptor(null, { plainMagic: CODEC_MAGIC.gzip }))).rejects.toThrow(/Salted__/);
    // A zstd stream is not taken for a gzip one.
    await expect(run(Buffer.concat([CODEC_MAGIC.zstd, randomBytes(40)]), createDecryptor('p', { plainMagic: CODEC_MAGIC.gzip }))).rejects.toThrow(/Salted__/);
  });
});
