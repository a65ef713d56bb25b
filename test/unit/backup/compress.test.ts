import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { createDecompressor, ParallelGzip } from '../../../src/backup/compress.ts';

async function run(parts: Buffer[], stage: NodeJS.ReadWriteStream): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(Readable.from(parts), stage, new Writable({
    write(c: Buffer, _e, cb) { out.push(c); cb(); },
  }));
  return Buffer.concat(out);
}

/** Text-like input (compressible) cut into chunks of uneven sizes. */
function textInput(bytes: number): { whole: Buffer; parts: Buffer[] } {
  const words = ['INSERT', 'INTO', '`t`', 'VALUES', "('", randomBytes(6).toString('hex'), "'),", '\n'];
  let s = '';
  let i = 0;
  while (s.length < bytes) s += words[i++ % words.length] + (i % 7 === 0 ? String(i) : ' ');
  const whole = Buffer.from(s.slice(0, bytes));
  const parts: Buffer[] = [];
  for (let at = 0, n = 1; at < whole.length; at += n, n = (n * 7919) % 70_001 + 1) parts.push(whole.subarray(at, at + n));
  return { whole, parts };
}

describe('ParallelGzip', () => {
  it('writes blocks as gzip members, in input order, that gunzip reads back whole', async () => {
    const { whole, parts } = textInput(5 * 64 * 1024 + 12_345);
    const gz = await run(parts, new ParallelGzip({ blockSize: 64 * 1024, parallel: 3 }));
    // 6 members: 5 full blocks and the rest, each starting with the gzip magic.
    let members = 0;
    for (let i = 0; i + 1 < gz.length; i++) if (gz[i] === 0x1f && gz[i + 1] === 0x8b && gz[i + 2] === 8) members++;
    expect(members).toBeGreaterThanOrEqual(6);
    expect(gunzipSync(gz).equals(whole)).toBe(true);
    expect((await run([gz], createDecompressor('gzip'))).equals(whole)).toBe(true);
    expect(gz.length).toBeLessThan(whole.length / 2);
  });

  it('is read by gzip -d and by Python\'s gzip module (what Trove\'s tool restores with)', async () => {
    const { whole, parts } = textInput(3 * 1024 * 1024 + 1);
    const gz = await run(parts, new ParallelGzip());
    expect(execFileSync('gzip', ['-d', '-c'], { input: gz, maxBuffer: 64 << 20 }).equals(whole)).toBe(true);
    const py = execFileSync('python3', ['-c', 'import gzip,sys,hashlib; print(hashlib.md5(gzip.decompress(sys.stdin.buffer.read())).hexdigest())'], { input: gz });
    const { createHash } = await import('node:crypto');
    expect(py.toString().trim()).toBe(createHash('md5').update(whole).digest('hex'));
  });

  it('an empty stream is still one valid (empty) gzip member', async () => {
    const gz = await run([], new ParallelGzip());
    expect(gz.length).toBeGreaterThan(0);
    expect(gunzipSync(gz).length).toBe(0);
    expect(execFileSync('gzip', ['-d', '-c'], { input: gz }).length).toBe(0);
  });

  it('passes a member on once it is ready, not when more blocks are in flight (a slow producer\'s first segment does not wait)', async () => {
    const { whole } = textInput(64 * 1024 + 10);
    const gz = new ParallelGzip({ blockSize: 64 * 1024, parallel: 4 });
    const out: Buffer[] = [];
    gz.on('data', (c: Buffer) => out.push(c));
    gz.write(whole);
    for (let i = 0; i < 200 && out.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    // One full block in, nothing ended: its member is out, the 10 bytes after it wait for more.
    expect(out.length).toBe(1);
    expect(gunzipSync(out[0]!).equals(whole.subarray(0, 64 * 1024))).toBe(true);
    const ended = new Promise((r) => gz.on('end', r));
    gz.end();
    await ended;
    expect(gunzipSync(Buffer.concat(out)).equals(whole)).toBe(true);
  });

  it('a failing block fails the stream', async () => {
    const gz = new ParallelGzip({ blockSize: 1024, parallel: 2, level: 42 });
    await expect(run([randomBytes(5000)], gz)).rejects.toThrow();
  });

  it('incompressible data round-trips', async () => {
    const data = randomBytes(2 * 1024 * 1024 + 7);
    const gz = await run([data.subarray(0, 100), data.subarray(100)], new ParallelGzip({ parallel: 2 }));
    expect(gunzipSync(gz).equals(data)).toBe(true);
  });
});

describe('zstd (the zstd tool as a stream stage)', () => {
  it('round-trips tens of MB (node:zlib\'s threaded zstd fails here) and writes zstd frames', async () => {
    const { createCompressor } = await import('../../../src/backup/compress.ts');
    const { whole } = textInput(24 * 1024 * 1024);
    const parts: Buffer[] = [];
    for (let i = 0; i < whole.length; i += 1 << 20) parts.push(whole.subarray(i, i + (1 << 20)));
    const z = await run(parts, createCompressor('zstd'));
    expect(z.readUInt32LE(0)).toBe(0xfd2fb528);
    expect((await run([z], createDecompressor('zstd'))).equals(whole)).toBe(true);
    expect(execFileSync('zstd', ['-d', '-c', '-q'], { input: z, maxBuffer: 64 << 20 }).equals(whole)).toBe(true);
  });

  it('reads concatenated frames whole', async () => {
    const a = execFileSync('zstd', ['-q', '-c'], { input: Buffer.from('first ') });
    const b = execFileSync('zstd', ['-q', '-c'], { input: Buffer.from('second') });
    expect((await run([Buffer.concat([a, b])], createDecompressor('zstd'))).toString()).toBe('first second');
  });

  it('corrupt input fails the stream with the tool\'s reason instead of ending it short', async () => {
    const z = execFileSync('zstd', ['-q', '-c'], { input: randomBytes(200_000) });
    const cut = z.subarray(0, z.length - 1000);
    await expect(run([cut], createDecompressor('zstd'))).rejects.toThrow(/zstd/);
  });
});
