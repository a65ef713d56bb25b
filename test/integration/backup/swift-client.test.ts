/** The Swift client against a real Swift: typed errors, streamed bodies, and the token kept out of logs and errors. */
import { randomUUID } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, inject, it } from 'vitest';
import { runBackup, runRestore } from '../../../src/backup/pipeline.ts';
import { Segmenter } from '../../../src/backup/segmenter.ts';
import { createSwiftClient } from '../../../src/backup/swift-client.ts';
import { AbortedError, SwiftError } from '../../../src/errors.ts';
import { createLogger } from '../../../src/log.ts';
import { expectedSha256 } from '../../fixtures/backup/expected.ts';

const FIX = join(import.meta.dirname, '../../fixtures/backup');
const info = inject('swift');
const swift = createSwiftClient({ storageUrl: info.storageUrl, token: info.token });
const container = `client_${randomUUID().slice(0, 8)}`;

describe('Swift client', () => {
  it('a bad token is a non-retryable SwiftError 401 whose message does not carry the token', async () => {
    const bad = createSwiftClient({ storageUrl: info.storageUrl, token: 'AUTH_tk0000secret0000' });
    const e = await bad.putContainer(container).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SwiftError);
    expect((e as SwiftError).details.status).toBe(401);
    expect((e as SwiftError).retryable).toBe(false);
    expect(JSON.stringify({ m: (e as Error).message, d: (e as SwiftError).details })).not.toContain('secret');
  });

  it('streams a PUT and a GET, and maps 404 to SwiftError', async () => {
    await swift.putContainer(container);
    await swift.putContainer(container); // 202 the second time
    const { etag } = await swift.putObject(container, 'a/b c.txt', Readable.from([Buffer.from('hello '), Buffer.from('world')]));
    expect(etag).toBe('5eb63bbbe01eeed093cb22bb8f5acdc3');
    const got = await swift.get(container, 'a/b c.txt');
    const chunks: Buffer[] = [];
    for await (const c of got.body) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('hello world');
    await swift.delete(container, 'a/b c.txt');
    const e = await swift.head(container, 'a/b c.txt').catch((x: unknown) => x);
    expect((e as SwiftError).details.status).toBe(404);
    await swift.delete(container, 'a/b c.txt', { ignoreMissing: true });
  });

  it('a rejected SLO manifest (wrong segment etag) is a SwiftError 400 with Swift\'s reason', async () => {
    await swift.putContainer(container);
    await swift.putObject(container, 'seg_00000000', Buffer.alloc(10));
    const e = await swift
      .putManifest(container, 'm', [
        { path: `${container}/seg_00000000`, etag: '0'.repeat(32), size_bytes: 10 },
        { path: `${container}/seg_00000000`, etag: '0'.repeat(32), size_bytes: 10 },
      ])
      .catch((x: unknown) => x);
    expect((e as SwiftError).details.status).toBe(400);
    expect((e as Error).message).toContain('Etag Mismatch');
  });

  it('a streamed upload refused early (missing container) fails with the status instead of hanging', async () => {
    let produced = 0;
    const big = new Readable({
      read() {
        if (produced >= 64 * 1024 * 1024) return void this.push(null);
        produced += 256 * 1024;
        this.push(Buffer.alloc(256 * 1024));
      },
    });
    const seg = new Segmenter({ client: swift, container: `missing_${randomUUID()}`, prefix: 'b', segmentMaxSize: 32 * 1024 * 1024 });
    const e = await pipeline(big, seg).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SwiftError);
    expect((e as SwiftError).details.status).toBe(404);
    expect(produced).toBeLessThan(64 * 1024 * 1024);
  });

  it('never logs the token, even at trace level', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(c: Buffer, _e, cb) {
        lines.push(c.toString());
        cb();
      },
    });
    const log = createLogger({ level: 'trace', destination: sink as unknown as pino.DestinationStream });
    const id = randomUUID();
    const r = await runBackup({
      producer: { file: process.execPath, args: [join(FIX, 'produce.mjs'), String(1_500_000), id] },
      swift,
      container,
      backupId: id,
      metadata: { datastore: 'mariadb' },
      segmentMaxSize: 1024 * 1024,
      log,
    });
    await runRestore({ location: r.location, checksum: r.checksum, swift, consumer: { file: process.execPath, args: [join(FIX, 'consume.mjs'), expectedSha256(1_500_000, id)] }, log });
    expect(lines.length).toBeGreaterThan(2);
    expect(lines.join('')).not.toContain(info.token);
  });

  it('aborting a restore kills the consumer', async () => {
    const id = randomUUID();
    const log = pino({ level: 'silent' });
    const r = await runBackup({ producer: { file: process.execPath, args: [join(FIX, 'produce.mjs'), '200000', id] }, swift, container, backupId: id, metadata: {}, log });
    const ac = new AbortController();
    // A consumer that never reads and never exits on its own.
    const p = runRestore({ location: r.location, checksum: r.checksum, swift, consumer: { file: process.execPath, args: ['-e', 'process.on("SIGTERM", () => process.exit(143)); setInterval(() => {}, 1e9)'] }, signal: ac.signal, log });
    setTimeout(() => ac.abort(), 300);
    await expect(p).rejects.toBeInstanceOf(AbortedError);
  });
});
