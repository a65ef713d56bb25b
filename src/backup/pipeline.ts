/**
 * Streaming backup to Swift and restore from it, as one `stream.pipeline`
 * each: producer stdout → gzip → segmenter (one PUT per segment) → manifest,
 * and GET → gunzip → consumer stdin. Where the codec is a program (zstd both
 * ways) it is wired to the tool's own pipe, so the uncompressed stream goes
 * from process to process without a copy in Node. Objects, segments, manifests, checksums
 * and metadata headers are those Trove's backup tool writes and reads
 * (backup/storage/swift.py), so either side can restore the other's backups.
 * A failure or abort anywhere destroys every stage, kills the child and leaves
 * no manifest behind; the child's exit status decides success, not its output.
 */
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AbortedError, BadRequestError, ChecksumMismatchError, GuestError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { bytesRead, spawnStreaming } from '../process/exec.ts';
import { Segmenter, segmentName } from './segmenter.ts';
import { CODEC_MAGIC, compressorTool, createCompressor, createDecompressor, decompressorTool, describeObjectName, type Codec } from './compress.ts';
import { createDecryptor, createEncryptor } from './encrypt.ts';
import { PartsVerifier, type StoredPart, type SwiftClient } from './swift-client.ts';

export interface ChildSpec {
  file: string;
  /** argv, never secrets (pass those through env or files). */
  args: readonly string[];
  env?: Record<string, string | undefined> | undefined;
  cwd?: string | undefined;
  /** Each stderr line of the tool (unredacted; e.g. to parse mariabackup's LSN). */
  onStderrLine?: ((line: string) => void) | undefined;
}

export interface BackupRequest {
  /** The backup tool; its stdout is the backup stream. */
  producer: ChildSpec;
  swift: SwiftClient;
  /** Trove's default is `database_backups`. */
  container: string;
  backupId: string;
  /**
   * Becomes `X-Object-Meta-<key with '_' → '-'>` (e.g. datastore, datastore_version, lsn).
   * A function is called once the producer has finished (a tool reports its LSN at the end).
   */
  metadata: Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>);
  /** Bytes per segment. Default 2 GiB (Trove's). */
  segmentMaxSize?: number | undefined;
  /** Manifest suffix after `<backupId>.`: 'xbstream.gz' (default) or 'tar.gz'. */
  extension?: string | undefined;
  /** Compress the producer's output (default true; false for tools that compress themselves, e.g. pg_basebackup -z). */
  compress?: boolean | undefined;
  /** Codec when compressing (default gzip, Trove's); `extension` must end with its suffix. */
  codec?: Codec | undefined;
  /** OpenSSL-compatible encryption key (backup_aes_cbc_key); the object name gets `.enc`. Never logged. */
  encryptionKey?: string | null | undefined;
  /** Called every `progressIntervalMs` (default 30 s) with bytes read from the tool and bytes stored so far. */
  onProgress?: ((p: { sourceBytes: number; storedBytes: number; mbPerSec: number }) => void) | undefined;
  progressIntervalMs?: number | undefined;
  signal?: AbortSignal | undefined;
  log: Logger;
  /** V8's minor GC (process/idle-gc.ts exposeMinorGc), run after each 8 MiB that passes through Node. */
  minorGc?: (() => void) | null | undefined;
}

export interface BackupResult {
  /** `<storage url>/<container>/<manifest>`, as Trove stores it. */
  location: string;
  /** Plain object: its md5; SLO: md5 of the concatenated segment md5s (the SLO ETag). */
  checksum: string;
  /** Stored (compressed) bytes. */
  size: number;
  segments: number;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;
const META_KEY = /^[A-Za-z0-9_-]{1,100}$/;

export function metadataHeaders(metadata: Record<string, string>): Record<string, string> {
  const h: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata)) {
    if (!META_KEY.test(k)) throw new BadRequestError(`invalid backup metadata key ${JSON.stringify(k)}`);
    if (/[\r\n\0]/.test(v)) throw new BadRequestError(`invalid value for backup metadata key ${k}`);
    h[`X-Object-Meta-${k.replaceAll('_', '-')}`] = v;
  }
  return h;
}

function checkName(what: string, v: string): void {
  if (!NAME.test(v)) throw new BadRequestError(`invalid ${what} ${JSON.stringify(v)}`);
}

/** Bytes through Node between two minor GCs: the chunks' buffers go then, not ~64 MB later. */
const GC_EVERY_BYTES = 8 * 1024 * 1024;

/** Runs `minorGc` after each GC_EVERY_BYTES it is told of; a no-op without one. */
function gcPacer(minorGc: (() => void) | null | undefined): (bytes: number) => void {
  if (!minorGc) return () => {};
  let since = 0;
  return (bytes) => {
    since += bytes;
    if (since >= GC_EVERY_BYTES) {
      since -= GC_EVERY_BYTES;
      minorGc();
    }
  };
}

/** A pass-through stage that tells `onBytes` the size of each chunk (counts, GC pacing). */
function tap(onBytes: (bytes: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      onBytes(chunk.length);
      cb(null, chunk);
    },
  });
}

/** An AbortController following `outer`, so a failing stage can stop the rest too. */
function linked(outer: AbortSignal | undefined): AbortController {
  const ac = new AbortController();
  if (outer?.aborted) ac.abort(outer.reason);
  else outer?.addEventListener('abort', () => ac.abort(outer.reason), { once: true });
  return ac;
}

/** Waits for all of `parts`; the first to fail aborts `ac` (stopping the others) and is thrown. */
async function allOrAbort(ac: AbortController, parts: Array<Promise<unknown>>): Promise<void> {
  await Promise.all(
    parts.map((p) =>
      p.catch((e: unknown) => {
        ac.abort();
        throw e;
      }),
    ),
  );
}

/** What a settled child failed with, or undefined when it succeeded (or is absent). */
const failureOf = async (p: Promise<unknown> | undefined): Promise<unknown> => p?.then(() => undefined, (e: unknown) => e);

export async function runBackup(req: BackupRequest): Promise<BackupResult> {
  checkName('container', req.container);
  checkName('backup id', req.backupId);
  const extension = req.extension ?? 'xbstream.gz';
  const manifest = `${req.backupId}.${extension}${req.encryptionKey ? '.enc' : ''}`;
  checkName('object name', manifest);
  if (typeof req.metadata !== 'function') metadataHeaders(req.metadata); // refuse bad keys before any upload
  const { swift, container, log } = req;
  if (req.signal?.aborted) throw new AbortedError('backup aborted before start');

  await swift.putContainer(container, { signal: req.signal });
  const ac = linked(req.signal);
  // The first segment is stored under the backup's own name: one that fits a segment (most do)
  // is then in place, where Trove's tool copies it there and deletes the segment.
  const segmenter = new Segmenter({ client: swift, container, prefix: req.backupId, firstName: manifest, segmentMaxSize: req.segmentMaxSize, signal: ac.signal });
  segmenter.on('error', () => {}); // reported through pipeline()
  // A codec program (zstd) reads the tool's stdout itself: the uncompressed stream, the
  // bulk of the bytes, never passes through Node. gzip is compressed here, on every core.
  const tool = req.compress !== false ? compressorTool(req.codec ?? 'gzip') : null;
  const codec = tool ? await spawnStreaming(tool.file, tool.args, { signal: ac.signal, stdin: 'pipe', killGraceMs: 1000, log }) : null;
  const { child, done, command } = await spawnStreaming(req.producer.file, req.producer.args, {
    signal: ac.signal,
    env: req.producer.env,
    cwd: req.producer.cwd,
    onStderrLine: req.producer.onStderrLine,
    stdout: codec ? codec.child.stdin! : 'pipe',
    killGraceMs: 2000,
    log,
  });
  // The codec's input now has two writers, the tool and Node (which writes nothing): Node
  // ends its side once the tool has exited, and the codec sees the end of the stream.
  if (codec) {
    const end = () => void codec.child.stdin?.end();
    done.then(end, end);
  }
  log.info({ container, manifest, command }, 'backup started');
  const stdout = codec ? codec.child.stdout : child.stdout;
  if (!stdout) throw new Error('producer has no stdout');
  const children = codec ? [done, codec.done] : [done];
  let progress: NodeJS.Timeout | null = null;
  try {
    let counted = 0;
    const pace = gcPacer(req.minorGc);
    // What the codec program has read from the tool (Linux's per-process I/O count), else what passed here.
    // The count only grows: an exited, not yet reaped codec reads as 0 there (seen once in the suite).
    let sourceSeen = 0;
    const sourceBytes = () => (sourceSeen = Math.max(sourceSeen, codec?.child.pid ? bytesRead(codec.child.pid) ?? counted : counted));
    const startedAt = Date.now();
    progress = setInterval(() => {
      const read = sourceBytes();
      const p = { sourceBytes: read, storedBytes: segmenter.bytes, mbPerSec: read / 1e6 / Math.max(0.001, (Date.now() - startedAt) / 1000) };
      log.info({ source_bytes: p.sourceBytes, stored_bytes: p.storedBytes, mb_per_s: Math.round(p.mbPerSec * 10) / 10 }, 'backup progress');
      req.onProgress?.(p);
    }, req.progressIntervalMs ?? 30_000);
    // What passes through Node: the tool's raw stream for gzip, zstd's output otherwise (not the source).
    const stages: Array<NodeJS.ReadableStream | NodeJS.WritableStream | NodeJS.ReadWriteStream> = [
      stdout,
      tap((n) => {
        if (!codec) counted += n;
        pace(n);
      }),
    ];
    if (req.compress !== false && !codec) stages.push(createCompressor(req.codec ?? 'gzip'));
    if (req.encryptionKey) stages.push(createEncryptor(req.encryptionKey));
    stages.push(segmenter);
    const flowing = pipeline(stages as unknown as [NodeJS.ReadableStream, NodeJS.WritableStream], { signal: ac.signal });
    // Any side failing stops the others: a dead child ends the stream, a
    // failed upload must kill the children.
    await allOrAbort(ac, [flowing, ...children]);
  } catch (e) {
    if (progress) clearInterval(progress);
    // Wait until the children are really gone (SIGKILL after the grace period) before reporting.
    const childErr = await failureOf(done);
    const codecErr = await failureOf(codec?.done);
    await cleanup(swift, container, segmenter.started, log);
    if (req.signal?.aborted) throw new AbortedError('backup aborted', { cause: e });
    // Prefer the tool's own failure, then the codec's: the stream errors they cause are secondary.
    for (const err of [childErr, codecErr]) if (err instanceof Error && !(err instanceof AbortedError)) throw err;
    throw e;
  }

  if (progress) clearInterval(progress);
  const segs = segmenter.segments;
  let checksum: string;
  const moved: string[] = [];
  try {
    const headers = metadataHeaders(typeof req.metadata === 'function' ? await req.metadata() : req.metadata);
    if (segs.length === 1) {
      // Already where Trove's tool would have copied it: the metadata goes on by POST.
      await swift.postObject(container, manifest, { headers, signal: req.signal });
      checksum = segs[0]!.etag;
    } else {
      // Several: the first moves to Trove's segment name (a copy of one segment) and the SLO
      // manifest takes the backup's name in its place.
      const first = segmentName(req.backupId, 0);
      moved.push(first);
      await swift.copyObject(container, first, { container, name: manifest }, { signal: req.signal });
      const parts = segs.map((seg, i) => (i === 0 ? { ...seg, name: first, path: `${container}/${first}` } : seg));
      await swift.putManifest(container, manifest, parts, { headers, signal: req.signal });
      checksum = createHash('md5').update(parts.map((x) => x.etag).join('')).digest('hex');
    }
    const head = await swift.head(container, manifest, { signal: req.signal });
    if (head.etag !== checksum) throw new ChecksumMismatchError(`backup ${manifest}`, checksum, head.etag);
  } catch (e) {
    // Leave nothing half-made behind: no manifest, no segments.
    await cleanup(swift, container, [...new Set([manifest, ...segmenter.started, ...moved])], log);
    if (req.signal?.aborted) throw new AbortedError('backup aborted', { cause: e });
    throw e;
  }
  const result = { location: `${await swift.storageUrl({ signal: req.signal })}/${container}/${manifest}`, checksum, size: segmenter.bytes, segments: segs.length };
  log.info({ location: result.location, checksum, size: result.size, segments: result.segments }, 'backup stored');
  return result;
}

async function cleanup(swift: SwiftClient, container: string, names: readonly string[], log: Logger): Promise<void> {
  for (const name of names) {
    try {
      await swift.delete(container, name, { ignoreMissing: true, signal: AbortSignal.timeout(30_000) });
    } catch (e) {
      log.warn({ err: e, object: `${container}/${name}` }, 'could not delete leftover backup object');
    }
  }
}

export interface RestoreRequest {
  /** `<storage url>/<container>/<object>` as returned by runBackup / stored by Trove. */
  location: string;
  /**
   * The backup's recorded checksum, compared with the GET ETag (quotes
   * stripped) before any byte is passed on. Empty or undefined skips the
   * check, as Trove does for backups without a recorded checksum.
   */
  checksum: string | undefined;
  swift: SwiftClient;
  /** The restore tool; reads the uncompressed stream on stdin. */
  consumer: ChildSpec;
  /** Key for `.enc` objects (backup_aes_cbc_key). */
  encryptionKey?: string | null | undefined;
  /** Decompress before the consumer (default true; the codec comes from the object name). */
  decompress?: boolean | undefined;
  signal?: AbortSignal | undefined;
  log: Logger;
  /** V8's minor GC (process/idle-gc.ts exposeMinorGc), run after each 8 MiB that passes through Node. */
  minorGc?: (() => void) | null | undefined;
}

export interface RestoreResult {
  /** Compressed bytes downloaded (Trove's `restore_size`). */
  size: number;
}

/** Trove splits the location on '/': the last two parts are the container and the object. */
export function parseLocation(location: string): { container: string; name: string } {
  const parts = location.split('/');
  const name = parts.at(-1) ?? '';
  const container = parts.at(-2) ?? '';
  if (!NAME.test(container) || !NAME.test(name) || parts.length < 3) throw new BadRequestError(`invalid backup location ${JSON.stringify(location)}`);
  return { container, name };
}

export async function runRestore(req: RestoreRequest): Promise<RestoreResult> {
  const { container, name } = parseLocation(req.location);
  const { log } = req;
  // The object's name says how it was written: `.enc` encrypted, `.gz`/`.zst` compressed.
  const what = describeObjectName(name);
  const ac = linked(req.signal);
  const got = await req.swift.get(container, name, {
    signal: ac.signal,
    onResume: (offset, err) => log.warn({ object: `${container}/${name}`, offset, reason: err.message }, 'download cut short; taking it up where it stopped'),
  });
  if (!req.checksum) log.warn({ object: `${container}/${name}` }, 'restoring without a checksum to verify');
  else if (got.etag !== req.checksum) {
    got.body.destroy();
    throw new ChecksumMismatchError(`backup ${container}/${name}`, req.checksum, got.etag);
  }
  // The ETag vouches for what Swift recorded; the bytes themselves are checked as they arrive
  // against the md5 of each part (the object, or each segment of its manifest): a segment rotted
  // on disk, or bytes damaged on the way, fail the restore by name, whether or not the codec
  // checks its own stream (the zstd the PostgreSQL server writes has no checksum of its own).
  let parts: StoredPart[] | null;
  try {
    parts = await req.swift.parts(container, name, got, { signal: ac.signal });
  } catch (e) {
    got.body.destroy();
    throw e;
  }
  if (!parts) log.warn({ object: `${container}/${name}` }, 'restoring a large object whose segments have no md5s to check the bytes against');
  const verifier = parts ? new PartsVerifier(parts) : null;
  let size = 0;
  // Every buffer through Node counts towards the next minor GC: the download's and, for gzip, what is inflated.
  const pace = gcPacer(req.minorGc);
  const { child, done, command } = await spawnStreaming(req.consumer.file, req.consumer.args, {
    signal: ac.signal,
    env: req.consumer.env,
    cwd: req.consumer.cwd,
    onStderrLine: req.consumer.onStderrLine,
    stdin: 'pipe',
    stdout: 'ignore',
    killGraceMs: 2000,
    log,
  });
  // zstd's program writes into the restore tool itself: the uncompressed stream never passes
  // through Node. gzip is inflated here (node:zlib is faster than gzip -d) and written into it.
  const codecName = req.decompress !== false ? (what.codec ?? 'gzip') : null;
  const tool = codecName ? decompressorTool(codecName) : null;
  const codec = tool ? await spawnStreaming(tool.file, tool.args, { signal: ac.signal, stdin: 'pipe', stdout: child.stdin!, killGraceMs: 1000, log }) : null;
  // Node ends its own (silent) side of the tool's input once the codec, the other writer, has exited.
  if (codec) {
    const end = () => void child.stdin?.end();
    codec.done.then(end, end);
  }
  log.info({ object: `${container}/${name}`, command }, 'restore started');
  const stdin = codec ? codec.child.stdin : child.stdin;
  if (!stdin) throw new Error('consumer has no stdin');
  const children = codec ? [done, codec.done] : [done];
  // Which stage failed first says what went wrong; the stages after it only fail on what they got,
  // and those that fail once a child's failure has stopped everything say nothing new.
  type Stage = 'download' | 'verify' | 'decrypt' | 'gunzip' | 'input';
  const failed: { first: { stage: Stage; err: Error } | null } = { first: null };
  // An `.enc` object that turned out to be in the clear: a failure after it is corruption, not a key.
  let inTheClear = false;
  const watch = (stage: Stage, stream: NodeJS.EventEmitter) =>
    stream.on('error', (err: Error) => void (ac.signal.aborted || (failed.first ??= { stage, err })));
  watch('download', got.body);
  watch('input', stdin);
  // The program may close its input while Node is not writing: no EPIPE then, only a close
  // before the end, which the pipeline passes on to the other stages as their failure.
  stdin.once('close', () => {
    if (!(stdin as NodeJS.WritableStream & { writableFinished?: boolean }).writableFinished && !ac.signal.aborted) {
      failed.first ??= { stage: 'input', err: new Error('the restore tool closed its input before the end of the stream') };
    }
  });
  try {
    const stages: Array<NodeJS.ReadableStream | NodeJS.WritableStream | NodeJS.ReadWriteStream> = [got.body];
    if (what.encrypted) {
      // Without a key only an `.enc` object that was never encrypted (Trove's tool) gets through.
      const onPlain = () => {
        inTheClear = true;
        log.warn({ object: `${container}/${name}` }, 'backup named .enc is not encrypted (as Trove\'s backup tool writes it when given a key); restoring it as it is');
      };
      const decrypt = createDecryptor(req.encryptionKey ?? null, { plainMagic: CODEC_MAGIC[what.codec ?? 'gzip'], onPlain });
      stages.push(watch('decrypt', decrypt) as Transform);
    }
    if (codecName && !tool) stages.push(watch('gunzip', createDecompressor(codecName)) as Transform);
    if (codecName && !tool) stages.push(tap(pace));
    stages.push(stdin);
    const flowing = pipeline(stages as unknown as [NodeJS.ReadableStream, NodeJS.WritableStream], { signal: ac.signal }).catch((e: unknown) => {
      // A restore tool may stop reading at its own end of the stream (tar at its end-of-archive
      // blocks, before the padding after them), and a decompressing program stops at bad data:
      // Node's write then fails (EPIPE, or the input is closed) and the exit status of the
      // program that closed it decides.
      if (failed.first?.stage === 'input') return codec ? codec.done.then(() => done) : done;
      throw e;
    });
    const corrupt = (why: string) => {
      const err = new Error(why);
      failed.first ??= { stage: 'verify', err };
      got.body.destroy(err);
    };
    // Counted and checked beside the pipe (attached in the same tick, so no chunk passes
    // unseen), not as a stream stage of its own: one stage less for every chunk of the download.
    got.body.on('data', (chunk: Buffer) => {
      size += chunk.length;
      pace(chunk.length);
      const why = verifier?.update(chunk);
      if (why) corrupt(why);
    });
    // Checked before the tools' ends count: a last segment that differs fails the restore even when they took it.
    const verified = verifier
      ? new Promise<void>((resolve, reject) => {
          got.body.once('end', () => {
            const why = verifier.end();
            if (!why) return resolve();
            corrupt(why);
            reject(new Error(why));
          });
          // Destroyed before its end: what failed says so, or a tool stopped at its own end (tar) and needed no more.
          got.body.once('close', () => resolve());
        })
      : Promise.resolve();
    verified.catch(() => {});
    await allOrAbort(ac, [flowing, ...children]);
    await verified;
  } catch (e) {
    got.body.destroy();
    const childErr = await failureOf(done);
    const codecErr = await failureOf(codec?.done);
    if (req.signal?.aborted) throw new AbortedError('restore aborted', { cause: e });
    const object = `${container}/${name}`;
    const first = failed.first;
    switch (first?.stage) {
      case 'download': {
        // Swift's proxy checks each segment's md5 as it serves it and drops the connection at one that differs.
        const where = verifier?.partAt(size);
        throw new GuestError(
          `the download of backup ${object} broke off after ${size} bytes${where && parts!.length > 1 ? `, in ${where}` : ''} (${first.err.message}): a segment that no longer matches the manifest, or Swift failing mid-way`,
          { cause: first.err },
        );
      }
      case 'verify':
        throw new GuestError(`backup ${object} is corrupt: ${first.err.message}`, { cause: first.err });
      case 'decrypt':
        throw new BadRequestError(`backup ${object}: ${first.err.message}`, { cause: first.err });
      case 'gunzip':
        // AES-CBC with another key deciphers to noise, found out by the decompressor, not by the cipher.
        if (what.encrypted && !inTheClear) throw new BadRequestError(`backup decryption failed (wrong key or corrupt data): ${object} does not decrypt to a gzip stream (${first.err.message})`, { cause: first.err });
        throw new GuestError(`backup ${object} is corrupt: gunzip failed after ${size} bytes downloaded: ${first.err.message}`, { cause: first.err });
    }
    if (what.encrypted && !inTheClear && codecErr instanceof Error && !(codecErr instanceof AbortedError)) {
      throw new BadRequestError(`backup decryption failed (wrong key or corrupt data): ${object} does not decrypt to a ${what.codec} stream (${codecErr.message})`, { cause: codecErr });
    }
    // A corrupt stream fails in the decompressing program first; the tool then fails on what it got.
    for (const err of [codecErr, childErr]) if (err instanceof Error && !(err instanceof AbortedError)) throw err;
    throw e;
  }
  log.info({ object: `${container}/${name}`, size }, 'restore finished');
  return { size };
}
