/**
 * Compression codecs for backup streams. gzip is what Trove's tool writes
 * (object suffix `.gz`); zstd (`.zst`) is faster and smaller and uses every
 * core (libzstd worker threads). The codec is in the object name, so a
 * restore picks the right decompressor from the name alone.
 */
import { constants, createGunzip, createGzip, createZstdCompress, createZstdDecompress } from 'node:zlib';
import { availableParallelism } from 'node:os';
import type { Transform } from 'node:stream';

export type Codec = 'gzip' | 'zstd';

export const CODEC_SUFFIX: Record<Codec, string> = { gzip: 'gz', zstd: 'zst' };

export function createCompressor(codec: Codec = 'gzip', level?: number): Transform {
  if (codec === 'zstd') {
    return createZstdCompress({
      params: {
        [constants.ZSTD_c_compressionLevel]: level ?? 3,
        [constants.ZSTD_c_nbWorkers]: availableParallelism(),
      },
    });
  }
  return createGzip({ level: level ?? 6 });
}

export function createDecompressor(codec: Codec = 'gzip'): Transform {
  return codec === 'zstd' ? createZstdDecompress() : createGunzip();
}

/** The codec and encryption an object name says it has: `<id>.<format>.<gz|zst>[.enc]`. */
export function describeObjectName(name: string): { codec: Codec | null; encrypted: boolean } {
  const encrypted = name.endsWith('.enc');
  const base = encrypted ? name.slice(0, -4) : name;
  const codec = base.endsWith('.zst') ? 'zstd' : base.endsWith('.gz') ? 'gzip' : null;
  return { codec, encrypted };
}
