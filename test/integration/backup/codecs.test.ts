// zstd and encryption through the real Swift: an encrypted backup opens with
// `openssl enc -d` + `gzip -d` (Trove's legacy format), an object Trove's way
// encrypted (`gzip | openssl enc`) restores through ours, and zstd objects
// restore by their name alone.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pino } from 'pino';
import { describe, expect, inject, it } from 'vitest';
import { runBackup, runRestore } from '../../../src/backup/pipeline.ts';
import { createSwiftClient } from '../../../src/backup/swift-client.ts';
import { expectedSha256 } from '../../fixtures/backup/expected.ts';

const FIX = join(import.meta.dirname, '../../fixtures/backup');
const node = process.execPath;
const MiB = 1024 * 1024;
const swiftInfo = inject('swift');
const swift = createSwiftClient({ storageUrl: swiftInfo.storageUrl, token: swiftInfo.token });
const log = pino({ level: 'silent' });
const container = `codecs_${randomUUID().slice(0, 8)}`;
const KEY = "k3y with spaces & 'quotes'";
const producer = (bytes: number, seed: string) => ({ file: node, args: [join(FIX, 'produce.mjs'), String(bytes), seed] });
const consumer = (sha: string) => ({ file: node, args: [join(FIX, 'consume.mjs'), sha] });

async function download(location: string): Promise<Buffer> {
  const res = await fetch(location, { headers: { 'X-Auth-Token': swiftInfo.token } });
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

describe('backup codecs and encryption', () => {
  it('encrypts in OpenSSL format: openssl enc -d and gzip -d read it back; ours restores it', async () => {
    const id = `enc-${randomUUID().slice(0, 8)}`;
    const bytes = 3 * MiB + 123;
    const r = await runBackup({ producer: producer(bytes, id), swift, container, backupId: id, metadata: {}, segmentMaxSize: MiB, encryptionKey: KEY, log });
    expect(r.location.endsWith(`${id}.xbstream.gz.enc`)).toBe(true);
    const body = await download(r.location);
    expect(body.subarray(0, 8).toString('latin1')).toBe('Salted__');
    // The key goes to openssl through the environment, never argv.
    const plain = execFileSync('sh', ['-c', 'openssl enc -d -aes-256-cbc -md sha512 -pbkdf2 -iter 10000 -salt -pass env:K | gzip -d -c | sha256sum'], {
      input: body,
      env: { ...process.env, K: KEY },
      maxBuffer: 64 * MiB,
    });
    expect(plain.toString().split(' ')[0]).toBe(expectedSha256(bytes, id));
    await runRestore({ location: r.location, checksum: r.checksum, swift, consumer: consumer(expectedSha256(bytes, id)), encryptionKey: KEY, log });
    await expect(runRestore({ location: r.location, checksum: r.checksum, swift, consumer: consumer(expectedSha256(bytes, id)), encryptionKey: 'wrong', log })).rejects.toThrow(/decryption failed \(wrong key or corrupt data\)/);
    await expect(runRestore({ location: r.location, checksum: r.checksum, swift, consumer: consumer(expectedSha256(bytes, id)), log })).rejects.toThrow(/no backup encryption key/);
  });

  it("restores an object encrypted Trove's way (gzip | openssl enc)", async () => {
    const id = `trove-enc-${randomUUID().slice(0, 8)}`;
    const data = execFileSync(node, [join(FIX, 'produce.mjs'), String(MiB), id], { maxBuffer: 64 * MiB });
    const enc = execFileSync('openssl', ['enc', '-aes-256-cbc', '-md', 'sha512', '-pbkdf2', '-iter', '10000', '-salt', '-pass', 'env:K'], { input: gzipSync(data), env: { ...process.env, K: KEY }, maxBuffer: 64 * MiB });
    await swift.putContainer(container);
    const { etag } = await swift.putObject(container, `${id}.xbstream.gz.enc`, enc);
    await runRestore({ location: `${swiftInfo.storageUrl}/${container}/${id}.xbstream.gz.enc`, checksum: etag, swift, consumer: consumer(expectedSha256(MiB, id)), encryptionKey: KEY, log });
  });

  it("an .enc object in the clear (as Trove's tool writes it given a key) restores with or without a key; corrupt, it is reported corrupt, not as a key problem", async () => {
    const id = `clear-enc-${randomUUID().slice(0, 8)}`;
    const data = execFileSync(node, [join(FIX, 'produce.mjs'), String(MiB), id], { maxBuffer: 64 * MiB });
    const gz = gzipSync(data);
    await swift.putContainer(container);
    const { etag } = await swift.putObject(container, `${id}.xbstream.gz.enc`, gz);
    const location = `${swiftInfo.storageUrl}/${container}/${id}.xbstream.gz.enc`;
    for (const encryptionKey of [KEY, null]) {
      await runRestore({ location, checksum: etag, swift, consumer: consumer(expectedSha256(MiB, id)), encryptionKey, log });
    }
    // The deflate data broken in the middle, the gzip header intact.
    const bad = Buffer.from(gz);
    bad.fill(0xff, 1000, 1400);
    const broken = await swift.putObject(container, `${id}-bad.xbstream.gz.enc`, bad);
    const err = await runRestore({ location: location.replace(`${id}.`, `${id}-bad.`), checksum: broken.etag, swift, consumer: consumer(expectedSha256(MiB, id)), encryptionKey: KEY, log }).then(() => null, (e: unknown) => e as Error);
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toMatch(/is corrupt: gunzip failed/);
    expect(err!.message).not.toMatch(/wrong key/);
  });

  it('zstd: named .zst, multi-segment, restores by the name alone', async () => {
    const id = `zst-${randomUUID().slice(0, 8)}`;
    const bytes = 4 * MiB;
    const r = await runBackup({ producer: producer(bytes, id), swift, container, backupId: id, metadata: {}, segmentMaxSize: MiB / 2, codec: 'zstd', extension: 'xbstream.zst', log });
    expect(r.location.endsWith(`${id}.xbstream.zst`)).toBe(true);
    const body = await download(r.location);
    expect(body.readUInt32LE(0)).toBe(0xfd2fb528); // zstd frame magic
    await runRestore({ location: r.location, checksum: r.checksum, swift, consumer: consumer(expectedSha256(bytes, id)), log });
  });

  it('zstd encrypted: restores with the key; another key is refused as such, not as a zstd or tool failure', async () => {
    const id = `zenc-${randomUUID().slice(0, 8)}`;
    const bytes = MiB;
    const r = await runBackup({ producer: producer(bytes, id), swift, container, backupId: id, metadata: {}, codec: 'zstd', extension: 'xbstream.zst', encryptionKey: KEY, log });
    expect(r.location.endsWith(`${id}.xbstream.zst.enc`)).toBe(true);
    await runRestore({ location: r.location, checksum: r.checksum, swift, consumer: consumer(expectedSha256(bytes, id)), encryptionKey: KEY, log });
    await expect(runRestore({ location: r.location, checksum: r.checksum, swift, consumer: consumer(expectedSha256(bytes, id)), encryptionKey: 'wrong', log }))
      .rejects.toThrow(/decryption failed \(wrong key or corrupt data\)/);
  });

  it('reports progress while the tool streams', async () => {
    const id = `prog-${randomUUID().slice(0, 8)}`;
    // 8 chunks of 256 KiB, 100 ms apart.
    const slow = { file: node, args: ['-e', "let i=0;const t=setInterval(()=>{process.stdout.write(Buffer.alloc(262144,i));if(++i===8)clearInterval(t)},100)"] };
    const seen: number[] = [];
    await runBackup({ producer: slow, swift, container, backupId: id, metadata: {}, log, progressIntervalMs: 150, onProgress: (p) => seen.push(p.sourceBytes) });
    expect(seen.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThanOrEqual(seen[i - 1]!);
    expect(seen.at(-1)!).toBeGreaterThan(0);
  });

  it('reports progress with zstd too, where the tool writes into zstd and no raw byte passes through the agent', async () => {
    const id = `progz-${randomUUID().slice(0, 8)}`;
    const slow = { file: node, args: ['-e', "let i=0;const t=setInterval(()=>{process.stdout.write(Buffer.alloc(262144,i));if(++i===8)clearInterval(t)},100)"] };
    const seen: number[] = [];
    const r = await runBackup({ producer: slow, swift, container, backupId: id, metadata: {}, log, codec: 'zstd', extension: 'xbstream.zst', progressIntervalMs: 150, onProgress: (p) => seen.push(p.sourceBytes) });
    expect(r.location.endsWith(`${id}.xbstream.zst`)).toBe(true);
    expect(seen.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThanOrEqual(seen[i - 1]!);
    // What zstd read of the tool's 2 MiB so far (its own /proc io count), not the compressed size.
    expect(seen.at(-1)!).toBeGreaterThan(r.size);
    expect(seen.at(-1)!).toBeGreaterThan(262144);
  });
});
