import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createDecryptor, createEncryptor } from '../../../src/backup/encrypt.ts';
import { createCompressor, createDecompressor } from '../../../src/backup/compress.ts';

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
});
