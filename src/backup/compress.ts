/**
 * Compression codecs for backup streams. gzip is what Trove's tool writes
 * (object suffix `.gz`); zstd (`.zst`) is faster and smaller. Both use every
 * core: gzip as pigz does, by cutting the stream into blocks compressed side
 * by side on libuv's thread pool; zstd through the `zstd` tool (`-T0`).
 * node:zlib's zstd is no use here: with worker threads it fails with
 * ERR_STREAM_PUSH_AFTER_EOF beyond a few MB (Node 24.21), and its
 * decompressor stops after the first frame. The codec is in the object name,
 * so a restore picks the right decompressor from the name alone.
 */
import { availableParallelism } from 'node:os';
import { Duplex, PassThrough, Transform, type TransformCallback } from 'node:stream';
import type { ZlibOptions } from 'node:zlib';
import { spawnStreaming } from '../process/exec.ts';

export type Codec = 'gzip' | 'zstd';

export const CODEC_SUFFIX: Record<Codec, string> = { gzip: 'gz', zstd: 'zst' };
/** The bytes each codec's stream starts with (RFC 1952 ID1 ID2 CM=deflate; RFC 8878 frame magic). */
export const CODEC_MAGIC: Record<Codec, Buffer> = { gzip: Buffer.from([0x1f, 0x8b, 0x08]), zstd: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]) };

/** node:zlib is loaded on first use: ~5-7 ms of every agent start, before its first answer, otherwise. */
const zlib = () => process.getBuiltinModule('node:zlib');
const gzipAsync = (input: Buffer, options: ZlibOptions): Promise<Buffer> =>
  new Promise((resolve, reject) => zlib().gzip(input, options, (err, out) => (err ? reject(err) : resolve(out))));

/** Bytes of input per gzip member: large enough that the per-member header and lost window cost < 0.1%. */
export const GZIP_BLOCK_SIZE = 1024 * 1024;

/**
 * gzip on several threads. Each block of input becomes one complete gzip
 * member, compressed on libuv's thread pool; members are written in input
 * order. A file of concatenated members is one valid gzip stream (RFC 1952
 * §2.2): `gzip -d`, Python's gzip module (Trove's tool) and node's gunzip
 * read it whole. A member is passed on as soon as it and those before it
 * are ready (the first segment of a backup does not wait for more input
 * than one block). At most `parallel` blocks are in flight, so memory stays
 * at a few MiB whatever the stream's size, and a slow consumer holds the
 * producer back through the usual stream backpressure.
 */
export class ParallelGzip extends Transform {
  readonly #level: number;
  readonly #blockSize: number;
  readonly #parallel: number;
  #buffered: Buffer[] = [];
  #bufferedBytes = 0;
  /** Blocks being compressed, oldest first; `out` once its member is ready. */
  #inFlight: Array<{ out: Buffer | null; settled: Promise<void> }> = [];
  #failed: Error | null = null;
  #members = 0;

  constructor(opts: { level?: number | undefined; blockSize?: number | undefined; parallel?: number | undefined } = {}) {
    super();
    this.#level = opts.level ?? 6;
    this.#blockSize = opts.blockSize ?? GZIP_BLOCK_SIZE;
    // Two more blocks than cores: while the oldest is written out, the pool stays busy.
    this.#parallel = Math.max(1, opts.parallel ?? availableParallelism() + 2);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#buffered.push(chunk);
    this.#bufferedBytes += chunk.length;
    this.#pump(false).then(() => cb(), (e: unknown) => cb(e as Error));
  }

  override _flush(cb: TransformCallback): void {
    this.#pump(true).then(() => cb(), (e: unknown) => cb(e as Error));
  }

  /** Passes on every member that is ready, in input order, as soon as it is. */
  #drain(): void {
    while (this.#inFlight[0]?.out) this.push(this.#inFlight.shift()!.out);
  }

  /** Waits for the oldest block; throws what any block failed with. */
  async #settleOldest(): Promise<void> {
    await this.#inFlight[0]!.settled;
    if (this.#failed) throw this.#failed;
  }

  /** Starts every full block (and, at the end, the rest), keeping at most `parallel` in flight. */
  async #pump(end: boolean): Promise<void> {
    if (this.#failed) throw this.#failed;
    while (this.#bufferedBytes >= this.#blockSize || (end && (this.#bufferedBytes > 0 || this.#members === 0))) {
      const all = this.#buffered.length === 1 ? this.#buffered[0]! : Buffer.concat(this.#buffered);
      const block = all.subarray(0, this.#blockSize);
      const rest = all.subarray(block.length);
      this.#buffered = rest.length > 0 ? [rest] : [];
      this.#bufferedBytes = rest.length;
      const slot: { out: Buffer | null; settled: Promise<void> } = { out: null, settled: Promise.resolve() };
      slot.settled = gzipAsync(block, { level: this.#level }).then(
        (member) => {
          slot.out = member;
          this.#drain();
        },
        (e: unknown) => void (this.#failed ??= e as Error),
      );
      this.#inFlight.push(slot);
      this.#members++;
      while (this.#inFlight.length >= this.#parallel) await this.#settleOldest();
    }
    if (end) while (this.#inFlight.length > 0) await this.#settleOldest();
  }
}

/** The zstd tool; `ZSTD` in the environment overrides (tests, odd layouts). */
const ZSTD = process.env['ZSTD'] ?? 'zstd';

/**
 * A filter child (stdin → stdout) as one Duplex for stream.pipeline. Its
 * output ends only after the child exited 0; a failing child (or a killed
 * one) fails the stream instead of passing on a truncated end. Destroying
 * the stream kills the child.
 */
export function childFilter(file: string, args: readonly string[]): Duplex {
  const ac = new AbortController();
  // The child starts once the process module is loaded; what is written before waits in `into`.
  const into = new PassThrough();
  const out = new PassThrough();
  const fail = (e: unknown) => out.destroy(e as Error);
  spawnStreaming(file, args, { stdin: 'pipe', signal: ac.signal, killGraceMs: 1000 }).then(({ child, done }) => {
    const stdin = child.stdin!;
    const stdout = child.stdout!;
    stdin.on('error', () => {}); // EPIPE when the child dies: reported through `done`
    into.pipe(stdin);
    stdout.pipe(out, { end: false });
    stdout.once('end', () => {
      done.then(() => out.end(), fail);
    });
    done.catch(fail);
  }, fail);
  const duplex = Duplex.from({ writable: into, readable: out });
  duplex.once('close', () => ac.abort());
  return duplex;
}

/** A codec program (stdin → stdout); the pipelines wire it straight to the backup or restore tool. */
export interface CodecTool {
  file: string;
  args: readonly string[];
}

/** zstd's level for backups (its own default): the zstd program's, and a tool's that compresses itself. */
export const ZSTD_LEVEL = 3;

/** The program that compresses for `codec`, or null when the agent compresses itself (gzip, on every core). */
export function compressorTool(codec: Codec, level?: number): CodecTool | null {
  return codec === 'zstd' ? { file: ZSTD, args: ['-q', '-c', `-${level ?? ZSTD_LEVEL}`, '-T0'] } : null;
}

/**
 * The program that decompresses `codec`, or null when the agent inflates it itself: Node's
 * zlib (Chromium's, with SIMD) inflates gzip about three times as fast as `gzip -d` (2 GB of
 * PostgreSQL or MariaDB backup: 1.3-1.5 s against 4.2-4.6 s of one core here), which pays for
 * the uncompressed stream passing through Node. zstd's own program writes into the restore
 * tool without it.
 */
export function decompressorTool(codec: Codec): CodecTool | null {
  return codec === 'zstd' ? { file: ZSTD, args: ['-q', '-d', '-c'] } : null;
}

/** Output chunks of the in-process gunzip: 256 KiB, so the restore tool gets few large writes. */
export const GUNZIP_CHUNK = 256 * 1024;

export function createCompressor(codec: Codec = 'gzip', level?: number): Duplex {
  const tool = compressorTool(codec, level);
  return tool ? childFilter(tool.file, tool.args) : new ParallelGzip({ level });
}

export function createDecompressor(codec: Codec = 'gzip'): Duplex {
  return codec === 'zstd' ? childFilter(ZSTD, ['-q', '-d', '-c']) : zlib().createGunzip({ chunkSize: GUNZIP_CHUNK });
}

/** The codec and encryption an object name says it has: `<id>.<format>.<gz|zst>[.enc]`. */
export function describeObjectName(name: string): { codec: Codec | null; encrypted: boolean } {
  const encrypted = name.endsWith('.enc');
  const base = encrypted ? name.slice(0, -4) : name;
  const codec = base.endsWith('.zst') ? 'zstd' : base.endsWith('.gz') ? 'gzip' : null;
  return { codec, encrypted };
}
