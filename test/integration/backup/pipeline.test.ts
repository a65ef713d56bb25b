/**
 * The backup pipeline against a real Swift (test/integration/setup/swift.ts),
 * with fixture scripts as backup/restore tools, and Trove's own upload format
 * (plain gzip stream + PUT) as the interop peer.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pino, type Logger } from 'pino';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { runBackup, runRestore } from '../../../src/backup/pipeline.ts';
import { createBackupService } from '../../../src/backup/service.ts';
import type { Datastore } from '../../../src/datastore.ts';
import { createSwiftClient } from '../../../src/backup/swift-client.ts';
import { AbortedError, ChecksumMismatchError, ProcessError } from '../../../src/errors.ts';
import { expectedSha256 } from '../../fixtures/backup/expected.ts';

const FIX = join(import.meta.dirname, '../../fixtures/backup');
const node = process.execPath;
const MiB = 1024 * 1024;
const swiftInfo = inject('swift');
const swift = createSwiftClient({ storageUrl: swiftInfo.storageUrl, token: swiftInfo.token });
const log = pino({ level: 'silent' });
const container = `backups_${randomUUID().slice(0, 8)}`;
const tmp = mkdtempSync(join(tmpdir(), 'ga-bak-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const producer = (bytes: number, seed: string, env?: Record<string, string>) => ({ file: node, args: [join(FIX, 'produce.mjs'), String(bytes), seed], env });
const consumer = (sha: string) => ({ file: node, args: [join(FIX, 'consume.mjs'), sha] });
const meta = { datastore: 'mariadb', datastore_version: '10.11', lsn: '123456' };

async function listing(): Promise<string[]> {
  const res = await fetch(`${swiftInfo.storageUrl}/${container}?format=json`, { headers: { 'X-Auth-Token': swiftInfo.token } });
  if (res.status === 204) return [];
  return ((await res.json()) as { name: string }[]).map((o) => o.name);
}

/**
 * A TCP relay to the suite's Swift: each connection goes upstream as it is, and `answer`
 * decides what of Swift's answers reaches the client (it writes to `client` and ends it).
 * `refuse`, given the connection's first bytes (a request's head), may answer it itself
 * (returning true): the connection then never reaches Swift; or return the head to send on
 * in its place (a proxy that rewrites requests). Requests it lets through ask
 * Swift to close the connection after its answer, so that each request comes on a new one
 * and `refuse` sees every head, whatever the client's keep-alive.
 */
async function relay(answer: (client: Socket, upstream: Socket) => void, refuse?: (head: string, client: Socket) => boolean | string): Promise<{ storageUrl: string; server: Server }> {
  const target = new URL(swiftInfo.storageUrl);
  const forward = (client: Socket) => {
    const upstream = connect(Number(target.port), target.hostname);
    client.pipe(upstream);
    answer(client, upstream);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    client.on('close', () => upstream.destroy());
  };
  const server = createServer((client) => {
    if (!refuse) return forward(client);
    client.on('error', () => {});
    client.once('data', (first: Buffer) => {
      const head = first.toString('latin1');
      const verdict = refuse(head, client);
      if (verdict === true) return;
      client.pause();
      client.unshift(Buffer.from((typeof verdict === 'string' ? verdict : head).replace(/\r\nConnection: keep-alive\r\n/i, '\r\nConnection: close\r\n'), 'latin1'));
      forward(client);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const relayed = new URL(swiftInfo.storageUrl);
  relayed.port = String((server.address() as AddressInfo).port);
  return { storageUrl: relayed.toString().replace(/\/+$/, ''), server };
}

/**
 * Cuts each connection once more than `cutAfter` bytes of answers went through it, `times`
 * times in all: a proxy or a network failing mid-download.
 */
async function cuttingRelay(cutAfter: number, times: number): Promise<{ storageUrl: string; cuts: () => number; server: Server }> {
  let cuts = 0;
  const r = await relay((client, upstream) => {
    let sent = 0;
    upstream.on('data', (d: Buffer) => {
      sent += d.length;
      if (cuts < times && sent > cutAfter) {
        cuts++;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(d);
    });
    upstream.on('end', () => client.end());
  });
  return { ...r, cuts: () => cuts };
}

/**
 * Flips one bit of the first answer bytes equal to `marker` (a read that ends with the marker's
 * start is held back until the next, or 50 ms, so a marker split across reads is still found):
 * bytes damaged on the way, which Swift cannot see.
 */
async function flippingRelay(marker: Buffer): Promise<{ storageUrl: string; flipped: () => number; server: Server }> {
  let flipped = 0;
  const r = await relay((client, upstream) => {
    let held = Buffer.alloc(0);
    let timer: NodeJS.Timeout | null = null;
    const flush = () => {
      if (timer) clearTimeout(timer);
      timer = null;
      if (held.length > 0) client.write(held);
      held = Buffer.alloc(0);
    };
    upstream.on('data', (d: Buffer) => {
      if (timer) clearTimeout(timer);
      timer = null;
      const buf = Buffer.concat([held, d]);
      const at = flipped === 0 ? buf.indexOf(marker) : -1;
      if (at >= 0) {
        buf[at]! ^= 0x01;
        flipped++;
      }
      // Hold back a tail that could be the start of the marker.
      let keep = 0;
      if (flipped === 0) {
        for (let k = Math.min(buf.length, marker.length - 1); k > 0; k--) {
          if (buf.subarray(buf.length - k).equals(marker.subarray(0, k))) {
            keep = k;
            break;
          }
        }
      }
      held = Buffer.from(buf.subarray(buf.length - keep));
      client.write(buf.subarray(0, buf.length - keep));
      if (keep > 0) timer = setTimeout(flush, 50);
    });
    upstream.on('end', () => {
      flush();
      client.end();
    });
  });
  return { ...r, flipped: () => flipped };
}

/** A logger keeping its lines, to see what the agent said. */
function keptLog(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: 'warn' }, sink), lines };
}

describe('runBackup / runRestore against Swift', () => {
  it('one segment: stored in place as <id>.xbstream.gz (no segment left, no copy), metadata headers, restores', async () => {
    const id = randomUUID();
    const bytes = 300_000;
    const r = await runBackup({ producer: producer(bytes, id), swift, container, backupId: id, metadata: meta, segmentMaxSize: MiB, log });
    expect(r.segments).toBe(1);
    expect(r.location).toBe(`${swiftInfo.storageUrl}/${container}/${id}.xbstream.gz`);
    const names = await listing();
    expect(names).toContain(`${id}.xbstream.gz`);
    expect(names.filter((n) => n.startsWith(`${id}_`))).toEqual([]);
    const head = await swift.head(container, `${id}.xbstream.gz`);
    expect(head.etag).toBe(r.checksum);
    expect(head.contentLength).toBe(r.size);
    expect(head.headers['x-object-meta-datastore']).toBe('mariadb');
    expect(head.headers['x-object-meta-datastore-version']).toBe('10.11');
    expect(head.headers['x-object-meta-lsn']).toBe('123456');
    const res = await runRestore({ location: r.location, checksum: r.checksum, swift, consumer: consumer(expectedSha256(bytes, id)), log });
    expect(res.size).toBe(r.size);
  });

  it('several segments: SLO manifest whose ETag is the checksum; restores byte-exact', async () => {
    const id = randomUUID();
    const bytes = Math.round(3.5 * MiB);
    const r = await runBackup({ producer: producer(bytes, id), swift, container, backupId: id, metadata: meta, segmentMaxSize: MiB, log });
    expect(r.segments).toBe(4);
    const segNames = (await listing()).filter((n) => n.startsWith(`${id.split('.')[0]}_`)).sort();
    expect(segNames).toEqual([0, 1, 2, 3].map((i) => `${id}_0000000${i}`));
    const head = await swift.head(container, `${id}.xbstream.gz`);
    expect(head.headers['x-static-large-object']).toBe('True');
    expect(head.etag).toBe(r.checksum);
    expect(head.headers['x-object-meta-datastore-version']).toBe('10.11');
    // The stored manifest is what Trove writes: segment paths, md5s and sizes.
    const m = await fetch(`${r.location}?multipart-manifest=get`, { headers: { 'X-Auth-Token': swiftInfo.token } });
    const stored = (await m.json()) as { name: string; bytes: number; hash: string }[];
    expect(stored.map((s) => s.name)).toEqual(segNames.map((n) => `/${container}/${n}`));
    expect(stored.slice(0, 3).every((s) => s.bytes === MiB)).toBe(true);
    expect(createHash('md5').update(stored.map((s) => s.hash).join('')).digest('hex')).toBe(r.checksum);
    await runRestore({ location: r.location, checksum: r.checksum, swift, consumer: consumer(expectedSha256(bytes, id)), log });
  });

  it('paces V8 with a minor GC per 8 MiB that passes through Node, both ways', async () => {
    const id = randomUUID();
    const bytes = 20 * MiB;
    let backupGcs = 0;
    const r = await runBackup({ producer: producer(bytes, id), swift, container, backupId: id, metadata: meta, segmentMaxSize: 8 * MiB, log, minorGc: () => void backupGcs++ });
    expect(backupGcs).toBe(2); // 20 MiB from the tool into the agent's gzip
    let restoreGcs = 0;
    await runRestore({ location: r.location, checksum: r.checksum, swift, consumer: consumer(expectedSha256(bytes, id)), log, minorGc: () => void restoreGcs++ });
    // What passes through Node: the download, and the 20 MiB the agent inflates into the restore tool.
    expect(restoreGcs).toBe(Math.floor((r.size + bytes) / (8 * MiB)));
  });

  it('a self-compressing tool (pg_basebackup -z): no gzip stage, <id>.tar.gz, restored without gunzip', async () => {
    const id = randomUUID();
    const bytes = 1_200_000;
    const r = await runBackup({ producer: producer(bytes, id), swift, container, backupId: id, metadata: { datastore: 'postgresql' }, extension: 'tar.gz', compress: false, segmentMaxSize: MiB, log });
    expect(r.location.endsWith(`/${container}/${id}.tar.gz`)).toBe(true);
    expect(r.size).toBe(bytes);
    expect(r.segments).toBe(2);
    await runRestore({ location: r.location, checksum: r.checksum, swift, consumer: consumer(expectedSha256(bytes, id)), decompress: false, log });
  });

  it('a segment PUT that Swift refuses (503, 401), or whose connection drops, before it takes the body is tried again: the backup completes', async () => {
    const id = randomUUID();
    const bytes = Math.round(3.5 * MiB);
    const refused: string[] = [];
    // Swift's proxy answers 503 before reading a byte when it cannot reach enough object servers.
    const answer = (status: string) => (client: Socket) => client.end(`HTTP/1.1 ${status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    const how: Record<string, (client: Socket) => void> = {
      [`${id}_00000001`]: answer('503 Service Unavailable'),
      [`${id}_00000002`]: (client) => client.resetAndDestroy(),
      // A token that expired during a long backup: credentials the agent looks up itself are renewed.
      [`${id}_00000003`]: answer('401 Unauthorized'),
    };
    const r = await relay(
      (client, upstream) => upstream.pipe(client),
      (head, client) => {
        const [method, path] = head.slice(0, head.indexOf('\r\n')).split(' ');
        const seg = path?.split('/').at(-1) ?? '';
        if (method !== 'PUT' || !how[seg] || refused.includes(seg)) return false;
        refused.push(seg);
        how[seg]!(client);
        return true;
      },
    );
    try {
      // One connection per request, so that each request's head is the first thing the relay sees.
      const lookups: boolean[] = [];
      const auth = async ({ refresh }: { refresh: boolean }) => (lookups.push(refresh), { storageUrl: r.storageUrl, token: swiftInfo.token });
      const retried: Array<{ path: string; attempt: number; reason: string }> = [];
      const onRetry = (x: { path: string; attempt: number; reason: string }) => void retried.push(x);
      const via = createSwiftClient({ auth, retryDelayMs: 10, agent: new Agent({ keepAlive: false }), onRetry });
      const b = await runBackup({ producer: producer(bytes, id), swift: via, container, backupId: id, metadata: meta, segmentMaxSize: MiB, log });
      expect(refused).toEqual([1, 2, 3].map((i) => `${id}_0000000${i}`));
      expect(lookups).toEqual([false, true]);
      // Told of each new try but the 401's (new credentials, not a retry).
      expect(retried.map((x) => [x.path.split('/').at(-1), x.attempt])).toEqual([[`${id}_00000001`, 2], [`${id}_00000002`, 2]]);
      expect(retried[0]!.reason).toMatch(/answered 503/);
      expect(b.segments).toBe(4);
      await runRestore({ location: b.location, checksum: b.checksum, swift, consumer: consumer(expectedSha256(bytes, id)), log });
    } finally {
      r.server.close();
    }
  });

  it('behind a proxy that never answers 100 Continue, each segment sends its body after a second and the backup completes', async () => {
    const id = randomUUID();
    const bytes = Math.round(1.5 * MiB);
    const expects: string[] = [];
    // Takes Expect out of each segment's PUT: Swift (eventlet) then sends no 100, as a proxy that drops it would not.
    const r = await relay(
      (client, upstream) => upstream.pipe(client),
      (head) => {
        // The segments' streamed PUTs (the copy and the manifest have a length, and ask nothing).
        if (!head.startsWith('PUT ') || !head.includes(`/${id}`) || !/\r\nTransfer-Encoding: chunked\r\n/i.test(head)) return false;
        expects.push(/\r\nExpect: 100-continue\r\n/i.test(head) ? 'asked' : 'not asked');
        return head.replace(/\r\nExpect: 100-continue\r\n/i, '\r\n');
      },
    );
    try {
      const via = createSwiftClient({ storageUrl: r.storageUrl, token: swiftInfo.token });
      const t = performance.now();
      const b = await runBackup({ producer: producer(bytes, id), swift: via, container, backupId: id, metadata: meta, segmentMaxSize: MiB, log });
      const ms = performance.now() - t;
      expect(b.segments).toBe(2);
      expect(expects).toEqual(['asked', 'asked']);
      // Two segments, one after the other, each waiting its second (with the 100, such a backup takes ~0.2 s).
      expect(ms).toBeGreaterThan(1900);
      await runRestore({ location: b.location, checksum: b.checksum, swift, consumer: consumer(expectedSha256(bytes, id)), log });
    } finally {
      r.server.close();
    }
  });

  it('a backup whose segment upload Swift breaks off mid-body starts again (backup_retries) with a new run of the tool, and its restore logs a refused GET it tried again; once more than allowed, the backup fails', async () => {
    const id = randomUUID();
    const source = join(tmp, `${id}.src`);
    writeFileSync(source, randomBytes(Math.round(2.5 * MiB)));
    const runs = join(tmp, `${id}.runs`);
    // Cuts the connection of a segment's PUT once 300 kB of its body went upstream: Swift drops the
    // partial object, and those bytes are gone from the stream.
    let cuts = 0;
    let cutLimit = 1;
    let getsRefused = 0;
    const r = await relay(
      (client, upstream) => upstream.pipe(client),
      (head, client) => {
        // The restore's first GET of the backup: a 503 before any byte.
        if (head.startsWith(`GET /`) && head.includes(`/${id}.xbstream.gz `) && getsRefused++ === 0) {
          client.end('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
          return true;
        }
        if (!/^PUT \S+_00000001 /.test(head) || cuts >= cutLimit) return false;
        cuts++;
        const target = new URL(swiftInfo.storageUrl);
        const upstream = connect(Number(target.port), target.hostname);
        upstream.on('error', () => client.destroy());
        upstream.pipe(client);
        upstream.write(head);
        let sent = 0;
        client.on('data', (d: Buffer) => {
          upstream.write(d);
          if ((sent += d.length) > 300_000) {
            client.destroy();
            upstream.destroy();
          }
        });
        return true;
      },
    );
    const updates: Record<string, unknown>[] = [];
    const svc = createBackupService({
      datastore: {
        name: 'mariadb',
        backup: {
          plan: async () => ({
            producer: { file: 'sh', args: ['-c', 'echo run >> "$0" && cat "$1"', runs, source] },
            extension: 'xbstream.gz', compress: true, metadata: () => ({}), cleanup: async () => {},
          }),
        },
      } as unknown as Datastore,
      updateBackup: async (_id, fields) => void updates.push({ ...fields }),
      usedGb: async () => 0, container, segmentMaxSize: MiB, swiftUrl: null, datastoreVersion: '10.11', encryptionKey: null, compression: 'gzip',
      retryDelayMs: 10,
    });
    const caller = { auth_token: swiftInfo.token, service_catalog: [{ type: 'object-store', endpoints: [{ publicURL: r.storageUrl }] }] };
    const k = keptLog();
    try {
      await svc.create({ id, datastore: 'mariadb', datastoreVersion: '10.11' }, caller, { log: k.log, signal: new AbortController().signal });
      expect(cuts).toBe(1);
      expect(readFileSync(runs, 'utf8')).toBe('run\nrun\n');
      expect(k.lines.filter((l) => l['msg'] === "Swift broke off the backup's upload; starting the backup again")).toHaveLength(1);
      const done = updates.at(-1)!;
      expect(done['state']).toBe('COMPLETED');
      // The restore, through the service's fetcher and the relay: the refused GET is tried again, and logged.
      const kr = keptLog();
      await svc.fetcher(caller, null).restoreInto(String(done['location']), String(done['checksum']), { file: 'cmp', args: ['-', source] }, { log: kr.log, signal: new AbortController().signal });
      expect(getsRefused).toBe(2);
      const retry = kr.lines.filter((l) => l['msg'] === 'a Swift request failed; trying it again');
      expect(retry).toHaveLength(1);
      expect(retry[0]).toMatchObject({ method: 'GET', attempt: 2, reason: expect.stringMatching(/answered 503/) });
      expect(JSON.stringify(kr.lines)).not.toContain(swiftInfo.token);
      expect((await listing()).filter((n) => n.startsWith(id)).sort()).toEqual([`${id}.xbstream.gz`, ...[0, 1, 2].map((i) => `${id}_0000000${i}`)]);

      // Cut every time: the first start and its one retry fail, conductor learns FAILED, nothing is left.
      const id2 = randomUUID();
      cuts = 0;
      cutLimit = Infinity;
      const err = await svc.create({ id: id2, datastore: 'mariadb', datastoreVersion: '10.11' }, caller, { log, signal: new AbortController().signal }).catch((e: unknown) => e);
      expect(cuts).toBe(2);
      expect((err as Error).message).toMatch(new RegExp(`^Failed to create backup ${id2}, error: Swift PUT \\S+_00000001`));
      expect(updates.at(-1)!['state']).toBe('FAILED');
      expect((await listing()).filter((n) => n.startsWith(id2))).toEqual([]);
    } finally {
      r.server.close();
    }
  });

  it('a producer failing after some output fails the backup and leaves no manifest and no segments', async () => {
    const id = randomUUID();
    const err = await runBackup({ producer: producer(4 * MiB, id, { FAIL_AFTER: String(2 * MiB + 1000) }), swift, container, backupId: id, metadata: meta, segmentMaxSize: MiB, log }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProcessError);
    expect((err as ProcessError).details.exitCode).toBe(3);
    expect((err as ProcessError).message).toContain('disk on fire');
    expect((await listing()).filter((n) => n.startsWith(id))).toEqual([]);
  });

  it('abort while the producer hangs kills it and leaves nothing', async () => {
    const id = randomUUID();
    const pidFile = join(tmp, `${id}.pid`);
    const ac = new AbortController();
    // gzip keeps a few 1 MiB blocks in flight before the first comes out: 6 MiB, then the hang.
    const p = runBackup({ producer: producer(8 * MiB, id, { HANG_AFTER: String(6 * MiB + 5000), PID_FILE: pidFile }), swift, container, backupId: id, metadata: meta, segmentMaxSize: MiB, signal: ac.signal, log });
    // Wait until the first segment (stored under the backup's own name) is in, then abort.
    let listed = false;
    for (let i = 0; i < 100 && !(listed = (await listing()).includes(`${id}.xbstream.gz`)); i++) await new Promise((r) => setTimeout(r, 100));
    expect(listed).toBe(true);
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(AbortedError);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    expect(() => process.kill(pid, 0)).toThrow();
    expect((await listing()).filter((n) => n.startsWith(id))).toEqual([]);
  });

  it('abort kills a producer that ignores SIGTERM (SIGKILL after the grace period)', async () => {
    const id = randomUUID();
    const pidFile = join(tmp, `${id}.pid`);
    const ac = new AbortController();
    const p = runBackup({ producer: producer(MiB, id, { HANG_AFTER: '1000', PID_FILE: pidFile, IGNORE_TERM: '1' }), swift, container, backupId: id, metadata: meta, segmentMaxSize: MiB, signal: ac.signal, log });
    for (let i = 0; i < 100 && !existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(AbortedError);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    expect(() => process.kill(pid, 0)).toThrow();
    expect((await listing()).filter((n) => n.startsWith(id))).toEqual([]);
  });

  it('a download cut twice mid-way (SLO) is taken up where it stopped with ranged GETs, and restores byte-exact', async () => {
    const id = randomUUID();
    const bytes = Math.round(3.5 * MiB);
    const r = await runBackup({ producer: producer(bytes, id), swift, container, backupId: id, metadata: meta, segmentMaxSize: MiB, log });
    expect(r.segments).toBe(4);
    const relay = await cuttingRelay(Math.round(1.3 * MiB), 2);
    try {
      const k = keptLog();
      const cutSwift = createSwiftClient({ storageUrl: relay.storageUrl, token: swiftInfo.token, retryDelayMs: 10 });
      const res = await runRestore({ location: r.location, checksum: r.checksum, swift: cutSwift, consumer: consumer(expectedSha256(bytes, id)), log: k.log });
      expect(res.size).toBe(r.size);
      expect(relay.cuts()).toBe(2);
      const resumed = k.lines.filter((l) => l['msg'] === 'download cut short; taking it up where it stopped');
      expect(resumed).toHaveLength(2);
      expect(resumed.every((l) => Number(l['offset']) > 0 && Number(l['offset']) < r.size)).toBe(true);
    } finally {
      relay.server.close();
    }
  });

  it('a single-object backup cut mid-way is taken up too; a download cut every time fails after the retries, saying so', async () => {
    const id = randomUUID();
    const bytes = 600_000;
    const r = await runBackup({ producer: producer(bytes, id), swift, container, backupId: id, metadata: meta, segmentMaxSize: MiB, log });
    expect(r.segments).toBe(1);
    const once = await cuttingRelay(200_000, 1);
    const always = await cuttingRelay(150_000, Infinity);
    try {
      const viaOnce = createSwiftClient({ storageUrl: once.storageUrl, token: swiftInfo.token, retryDelayMs: 10 });
      await runRestore({ location: r.location, checksum: r.checksum, swift: viaOnce, consumer: consumer(expectedSha256(bytes, id)), log });
      expect(once.cuts()).toBe(1);
      const viaAlways = createSwiftClient({ storageUrl: always.storageUrl, token: swiftInfo.token, retryDelayMs: 10, retries: 2 });
      const out = join(tmp, `${id}.out`);
      const err = await runRestore({ location: r.location, checksum: r.checksum, swift: viaAlways, consumer: { file: 'sh', args: ['-c', 'cat > "$0"', out] }, log }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/^the download of backup \S+ broke off after \d+ bytes \(.*taken up 2 times; the last try brought \d+ bytes\)/);
      expect(always.cuts()).toBe(3);
    } finally {
      once.server.close();
      always.server.close();
    }
  });

  it('a dynamic large object (segments by prefix, no md5 per segment in any manifest) restores unchecked, with a warning', async () => {
    const id = randomUUID();
    const parts = [randomBytes(200_000), randomBytes(123_456)];
    await swift.putContainer(container);
    for (const [i, part] of parts.entries()) await swift.putObject(container, `${id}-seg-${i}`, part);
    const name = `${id}.raw`;
    const put = await fetch(`${swiftInfo.storageUrl}/${container}/${name}`, {
      method: 'PUT', body: '', headers: { 'X-Auth-Token': swiftInfo.token, 'X-Object-Manifest': `${container}/${id}-seg-` },
    });
    expect(put.status).toBe(201);
    const head = await swift.head(container, name);
    expect(head.headers['x-object-manifest']).toBe(`${container}/${id}-seg-`);
    expect(await swift.parts(container, name, head)).toBeNull();
    const out = join(tmp, `${id}.out`);
    const k = keptLog();
    await runRestore({ location: `${swiftInfo.storageUrl}/${container}/${name}`, checksum: head.etag, swift, consumer: { file: 'sh', args: ['-c', 'cat > "$0"', out] }, decompress: false, log: k.log });
    expect(readFileSync(out).equals(Buffer.concat(parts))).toBe(true);
    expect(k.lines.map((l) => l['msg'])).toContain('restoring a large object whose segments have no md5s to check the bytes against');
  });

  it('a checksum mismatch is refused before the consumer sees a byte', async () => {
    const id = randomUUID();
    const r = await runBackup({ producer: producer(100_000, id), swift, container, backupId: id, metadata: meta, log });
    const started = join(tmp, `${id}.started`);
    const err = await runRestore({ location: r.location, checksum: 'f'.repeat(32), swift, consumer: { ...consumer('x'), env: { STARTED_FILE: started } }, log }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChecksumMismatchError);
    expect(existsSync(started)).toBe(false);
  });

  it('a segment replaced after the backup (same size, other bytes) fails the restore with the reason, not a tool error', async () => {
    const id = randomUUID();
    const bytes = Math.round(2.5 * MiB);
    const r = await runBackup({ producer: producer(bytes, id), swift, container, backupId: id, metadata: meta, segmentMaxSize: MiB, log });
    expect(r.segments).toBe(3);
    // Bit rot, or someone writing over a segment: Swift's SLO GET stops at the segment whose ETag no longer matches the manifest.
    const seg = `${id}_00000001`;
    const original = Buffer.from(await (await fetch(`${swiftInfo.storageUrl}/${container}/${seg}`, { headers: { 'X-Auth-Token': swiftInfo.token } })).arrayBuffer());
    const damaged = Buffer.from(original);
    damaged[damaged.length >> 1]! ^= 0xff;
    await swift.putObject(container, seg, damaged);
    const out = join(tmp, `${id}.out`);
    const err = await runRestore({ location: r.location, checksum: r.checksum, swift, consumer: { file: 'sh', args: ['-c', 'cat > "$0"', out] }, log }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/segment|incomplete|ended before|premature|corrupt/i);
    expect((err as Error).message).not.toMatch(/^sh |cat/);
  });

  /** Flips a byte in the middle of the object server's file holding exactly `bytes`: bit rot at rest, the ETag unchanged. */
  const rot = (bytes: Buffer): void => {
    const files = execFileSync('find', [swiftInfo.devices, '-name', '*.data', '-size', `${bytes.length}c`], { encoding: 'utf8' }).split('\n').filter(Boolean);
    const file = files.find((f) => readFileSync(f).equals(bytes));
    if (!file) throw new Error("the object's file was not found under the devices");
    const damaged = Buffer.from(bytes);
    damaged[damaged.length >> 1]! ^= 0x01;
    writeFileSync(file, damaged);
  };
  const get = async (name: string) => Buffer.from(await (await fetch(`${swiftInfo.storageUrl}/${container}/${name}`, { headers: { 'X-Auth-Token': swiftInfo.token } })).arrayBuffer());
  const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

  it('bytes damaged on the way (Swift holds them intact) fail the restore by their md5, even when the restore tool takes them', async () => {
    const id = randomUUID();
    const marker = Buffer.from(`damage-here-${id}`);
    const body = Buffer.concat([randomBytes(150_000), marker, randomBytes(150_000 - marker.length)]);
    const name = `${id}.raw`;
    await swift.putObject(container, name, body);
    const relay = await flippingRelay(marker);
    try {
      const viaRelay = createSwiftClient({ storageUrl: relay.storageUrl, token: swiftInfo.token });
      const out = join(tmp, `${id}.out`);
      const err = await runRestore({ location: `${relay.storageUrl}/${container}/${name}`, checksum: md5(body), swift: viaRelay, consumer: { file: 'sh', args: ['-c', 'cat > "$0"', out] }, decompress: false, log }).catch((e: unknown) => e);
      expect(relay.flipped()).toBe(1);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/is corrupt: the object \(300000 bytes\) has md5 [0-9a-f]{32}, Swift holds [0-9a-f]{32} for it/);
      // The tool took the damaged bytes (cat would take them all): only the md5 tells. What it had
      // not yet been given when the md5 failed at the object's end is cut off with it (under load,
      // 259,072 of the 300,000 bytes once).
      expect(readFileSync(out).length).toBeGreaterThan(150_000 + marker.length);
    } finally {
      relay.server.close();
    }
  });

  it('a segment rotted at rest (the ETag unchanged) fails the restore naming the segment; stored again, the same restore passes', async () => {
    const id = randomUUID();
    const r = await runBackup({ producer: producer(Math.round(2.5 * MiB), id), swift, container, backupId: id, metadata: meta, segmentMaxSize: MiB, compress: false, log });
    expect(r.segments).toBe(3);
    const segments = await Promise.all([0, 1, 2].map((i) => get(`${id}_0000000${i}`)));
    rot(segments[1]!);
    const out = join(tmp, `${id}.out`);
    const restore = () => runRestore({ location: r.location, checksum: r.checksum, swift, consumer: { file: 'sh', args: ['-c', 'cat > "$0"', out] }, decompress: false, log });
    const err = await restore().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    // Whichever sees it first: our md5 of the segment, or Swift's proxy, which checks each segment's
    // md5 as it serves it and drops the connection at one that differs (then no ranged GET gets it).
    expect((err as Error).message).toMatch(
      /is corrupt: segment 2 of 3 \(1048576 bytes\) has md5 [0-9a-f]{32}, Swift holds [0-9a-f]{32} for it|broke off after \d+ bytes, in segment 2 of 3 \(/,
    );
    // Swift quarantined the file it found rotten as it served it; the segment is stored again, as an operator would.
    await swift.putObject(container, `${id}_00000001`, segments[1]!);
    await restore();
    expect(md5(readFileSync(out))).toBe(md5(Buffer.concat(segments)));
  });

  it('a stored gzip stream that is corrupt inside (its checksum matches what was stored) fails with the decompressor\'s reason', async () => {
    const id = randomUUID();
    const raw = execFileSync(node, [join(FIX, 'produce.mjs'), '300000', id], { maxBuffer: 10 * MiB });
    const gz = gzipSync(raw);
    for (let i = 100; i < 140; i++) gz[i]! ^= 0x55;
    const name = `${id}.xbstream.gz`;
    await swift.putObject(container, name, gz);
    const checksum = createHash('md5').update(gz).digest('hex');
    const err = await runRestore({ location: `${swiftInfo.storageUrl}/${container}/${name}`, checksum, swift, consumer: consumer(expectedSha256(300_000, id)), log }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/corrupt/);
    expect((err as Error).message).not.toMatch(/sha256 mismatch/);
  });

  it('a consumer that rejects the data fails the restore with its exit status', async () => {
    const id = randomUUID();
    const r = await runBackup({ producer: producer(100_000, id), swift, container, backupId: id, metadata: meta, log });
    const err = await runRestore({ location: r.location, checksum: r.checksum, swift, consumer: consumer('0'.repeat(64)), log }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProcessError);
    expect((err as ProcessError).details.exitCode).toBe(1);
  });

  it('a restore tool that fails while the agent still streams into it fails the restore with its exit status, not as a broken download', async () => {
    const id = randomUUID();
    const bytes = 6 * MiB;
    const r = await runBackup({ producer: producer(bytes, id), swift, container, backupId: id, metadata: meta, log });
    for (const consumer of [`head -c 100000 > /dev/null; exit 3`, `exec 0<&-; sleep 0.3; exit 3`]) {
      const err = await runRestore({ location: r.location, checksum: r.checksum, swift, consumer: { file: 'sh', args: ['-c', consumer] }, log }).catch((e: unknown) => e);
      expect(err, consumer).toBeInstanceOf(ProcessError);
      expect((err as ProcessError).details.exitCode).toBe(3);
    }
  });

  it("restores an object uploaded the way Trove's tool does (gzip stream, plain PUT, md5 checksum)", async () => {
    const id = randomUUID();
    const raw = execFileSync(node, [join(FIX, 'produce.mjs'), '500000', id], { maxBuffer: 10 * MiB });
    const gz = gzipSync(raw, { level: 6 });
    const name = `${id}.xbstream.gz`;
    const put = await fetch(`${swiftInfo.storageUrl}/${container}/${name}`, {
      method: 'PUT',
      headers: { 'X-Auth-Token': swiftInfo.token, 'X-Object-Meta-datastore': 'mariadb' },
      body: gz,
    });
    expect(put.status).toBe(201);
    const checksum = createHash('md5').update(gz).digest('hex');
    expect(put.headers.get('etag')).toBe(checksum);
    const res = await runRestore({ location: `${swiftInfo.storageUrl}/${container}/${name}`, checksum, swift, consumer: consumer(expectedSha256(500_000, id)), log });
    expect(res.size).toBe(gz.length);
  });

  it('a consumer that stops at its end-of-archive (tar) before reading the last padding: still a success, every time', async () => {
    // tar exits at its end-of-archive blocks; what comes after them (4 MiB of zeros here, more than
    // any socket buffer holds) stays unwritten: the agent's write into tar's closed stdin fails
    // with EPIPE, and tar's exit status decides.
    const dir = join(tmp, `tar-${randomUUID()}`);
    execFileSync('mkdir', ['-p', join(dir, 'in')]);
    execFileSync('sh', ['-c', 'head -c 300000 /dev/urandom > "$0/in/data"', dir]);
    const tar = Buffer.concat([execFileSync('tar', ['-cf', '-', '-C', join(dir, 'in'), 'data'], { maxBuffer: 10 * MiB }), Buffer.alloc(4 * MiB)]);
    const gz = gzipSync(tar);
    const name = `${randomUUID()}.tar.gz`;
    await swift.putContainer(container);
    await swift.putObject(container, name, gz);
    const checksum = createHash('md5').update(gz).digest('hex');
    for (let i = 0; i < 25; i++) {
      const out = join(dir, `out-${i}`);
      execFileSync('mkdir', [out]);
      await runRestore({ location: `${swiftInfo.storageUrl}/${container}/${name}`, checksum, swift, consumer: { file: 'tar', args: ['-x', '-C', out] }, log });
      expect(readFileSync(join(out, 'data')).equals(readFileSync(join(dir, 'in', 'data')))).toBe(true);
    }
  });

  it("Trove's restore path (swiftclient, python) reads our SLO backup with our checksum", async () => {
    const id = randomUUID();
    const bytes = Math.round(2.5 * MiB);
    const r = await runBackup({ producer: producer(bytes, id), swift, container, backupId: id, metadata: meta, segmentMaxSize: MiB, log });
    // As Trove's tool restores: swiftclient's GET stream written into `gzip -d -c` (BACKUP-FORMAT: restore path).
    const py = `
import hashlib, subprocess, sys, threading, swiftclient
url, token, location, checksum = sys.argv[1:5]
conn = swiftclient.Connection(preauthurl=url, preauthtoken=token)
container, obj = location.split('/')[-2:]
headers, body = conn.get_object(container, obj, resp_chunk_size=65536)
assert headers['etag'].strip('"') == checksum, headers['etag']
p = subprocess.Popen('gzip -d -c', shell=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
h = hashlib.sha256()
def drain():
    for chunk in iter(lambda: p.stdout.read(65536), b''):
        h.update(chunk)
t = threading.Thread(target=drain)
t.start()
for chunk in body:
    p.stdin.write(chunk)
p.stdin.close()
t.join()
assert p.wait() == 0
print(h.hexdigest())
`;
    let out: string;
    try {
      out = execFileSync('/usr/bin/python3', ['-c', py, swiftInfo.storageUrl, swiftInfo.token, r.location, r.checksum], { encoding: 'utf8' });
    } catch (e) {
      throw new Error(`python3-swiftclient is needed (apt-get install -y python3-swiftclient): ${(e as Error).message}`);
    }
    expect(out.trim()).toBe(expectedSha256(bytes, id));
  });
});
