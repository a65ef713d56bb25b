/**
 * Cuts a byte stream into Swift segments of at most `segmentMaxSize` bytes and
 * uploads each one while it fills (one streamed PUT per segment), instead of
 * spooling 2 GiB to a temp file first as Trove's tool does. Memory stays
 * bounded by stream high-water marks: `_write` calls back only when the
 * segment's request body has room. Each segment's md5 is compared with the
 * ETag Swift returns. Naming follows Trove: `<backup id up to its first '.'>_%08d`
 * in the manifest's container.
 */
import { createHash, type Hash } from 'node:crypto';
import { PassThrough, Writable } from 'node:stream';
import { AbortedError, ChecksumMismatchError } from '../errors.ts';
import type { SloSegment, SwiftClient } from './swift-client.ts';

/** Segments whose PUT may still be finishing while the next one streams. */
const MAX_FINISHING = 2;

/** Trove's segment size: exactly 2 GiB. */
export const DEFAULT_SEGMENT_MAX_SIZE = 2 * 1024 * 1024 * 1024;

export interface SegmenterOptions {
  client: Pick<SwiftClient, 'putObject'>;
  container: string;
  /** Segment name prefix, e.g. the backup id; `_00000000`, `_00000001`, ... is appended. */
  prefix: string;
  /**
   * The first segment's name instead of `<prefix>_00000000`: the backup's own object name, so
   * a backup that fits one segment is stored in place, without a server-side copy.
   */
  firstName?: string | undefined;
  /** Bytes per segment; the last one is smaller. Default 2 GiB (Trove's). */
  segmentMaxSize?: number | undefined;
  signal?: AbortSignal | undefined;
  /** Called after each segment is stored and verified. */
  onSegment?: ((s: SloSegment & { name: string }) => void) | undefined;
}

/** Trove's segment name for a backup id and index. */
export function segmentName(backupId: string, index: number): string {
  const stem = backupId.split('.')[0] ?? backupId;
  return `${stem}_${String(index).padStart(8, '0')}`;
}

interface Current {
  name: string;
  body: PassThrough;
  md5: Hash;
  size: number;
  upload: Promise<{ etag: string }>;
}

export class Segmenter extends Writable {
  /** Segments stored so far, in order (also after a failure, for cleanup). */
  readonly segments: (SloSegment & { name: string })[] = [];
  /** Names of every segment whose PUT was started (cleanup candidates). */
  readonly started: string[] = [];
  readonly #opts: SegmenterOptions;
  readonly #max: number;
  readonly #ac = new AbortController();
  #current: Current | undefined;
  #finishing: Promise<SloSegment & { name: string }>[] = [];
  #failure: Error | undefined;
  #opened = 0;
  #total = 0;

  constructor(opts: SegmenterOptions) {
    super({ highWaterMark: 64 * 1024 });
    this.#opts = opts;
    this.#max = opts.segmentMaxSize ?? DEFAULT_SEGMENT_MAX_SIZE;
    if (!Number.isSafeInteger(this.#max) || this.#max < 1) throw new RangeError(`segmentMaxSize must be a positive integer, got ${this.#max}`);
    opts.signal?.addEventListener('abort', () => this.#ac.abort(), { once: true });
  }

  /** Bytes written so far. */
  get bytes(): number {
    return this.#total;
  }

  #open(): Current {
    const index = this.#opened++;
    const name = index === 0 && this.#opts.firstName ? this.#opts.firstName : segmentName(this.#opts.prefix, index);
    const body = new PassThrough({ highWaterMark: 64 * 1024 });
    // A failed upload destroys the body; its error is reported by `upload`.
    body.on('error', () => {});
    const upload = this.#opts.client.putObject(this.#opts.container, name, body, { signal: this.#ac.signal });
    // Observed in #close; keep an early failure from being unhandled meanwhile.
    upload.catch(() => {});
    this.started.push(name);
    const cur: Current = { name, body, md5: createHash('md5'), size: 0, upload };
    this.#current = cur;
    return cur;
  }

  /**
   * Ends the segment's body and lets its PUT finish in the background while
   * the next segment streams: Swift's last write and fsync of one segment
   * overlap the upload of the next. At most `MAX_FINISHING` segments wait for
   * their answer; they are verified and recorded in order.
   */
  async #close(cur: Current): Promise<void> {
    this.#current = undefined;
    cur.body.end();
    const verified = this.#verify(cur);
    // Observed in #settle; an early failure also stops the segments streaming after it.
    verified.catch((e: unknown) => {
      this.#failure ??= e as Error;
    });
    this.#finishing.push(verified);
    await this.#settle(MAX_FINISHING);
  }

  async #verify(cur: Current): Promise<SloSegment & { name: string }> {
    const { etag } = await cur.upload;
    const md5 = cur.md5.digest('hex');
    if (etag !== md5) throw new ChecksumMismatchError(`segment ${cur.name}`, md5, etag);
    return { name: cur.name, path: `${this.#opts.container}/${cur.name}`, etag: md5, size_bytes: cur.size };
  }

  /** Records finished segments, oldest first, until at most `pending` are still waiting. */
  async #settle(pending: number): Promise<void> {
    while (this.#finishing.length > pending) {
      const seg = await this.#finishing.shift()!;
      this.segments.push(seg);
      this.#opts.onSegment?.(seg);
    }
  }

  /** Writes into the segment body, resolving when it can take more (backpressure). */
  #feed(cur: Current, chunk: Buffer): Promise<void> {
    if (cur.body.destroyed) return this.#failed(cur);
    cur.md5.update(chunk);
    cur.size += chunk.length;
    this.#total += chunk.length;
    if (cur.body.write(chunk)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onDrain = (): void => {
        cur.body.off('close', onClose);
        resolve();
      };
      const onClose = (): void => {
        cur.body.off('drain', onDrain);
        this.#failed(cur).catch(reject);
      };
      cur.body.once('drain', onDrain);
      cur.body.once('close', onClose);
    });
  }

  /** The request stopped taking the body: surface the upload's own error. */
  async #failed(cur: Current): Promise<never> {
    await cur.upload;
    throw new Error(`segment ${cur.name}: request body closed before the segment was complete`);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.#writeChunk(chunk).then(() => cb(), (e: unknown) => cb(e as Error));
  }

  async #writeChunk(chunk: Buffer): Promise<void> {
    let rest = chunk;
    while (rest.length > 0) {
      if (this.#opts.signal?.aborted) throw new AbortedError('backup upload aborted');
      if (this.#failure) throw this.#failure;
      const cur = this.#current ?? this.#open();
      const room = this.#max - cur.size;
      const part = rest.length <= room ? rest : rest.subarray(0, room);
      rest = rest.subarray(part.length);
      await this.#feed(cur, part);
      if (cur.size === this.#max) await this.#close(cur);
    }
  }

  override _final(cb: (e?: Error | null) => void): void {
    // An empty stream still yields one (empty) segment, so a manifest can be written.
    const cur = this.#current ?? (this.#opened === 0 ? this.#open() : undefined);
    (cur ? this.#close(cur) : Promise.resolve())
      .then(() => this.#settle(0))
      .then(() => cb(), (e: unknown) => cb(e as Error));
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    // Abort in-flight PUTs (the one streaming and those finishing) so Swift drops partial segments.
    if (this.#current || this.#finishing.length > 0) this.#ac.abort();
    this.#current?.body.destroy();
    this.#current = undefined;
    cb(err);
  }
}
