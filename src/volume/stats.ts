/**
 * Filesystem stats in the exact shape of Trove's dbaas.get_filesystem_volume_stats:
 * block_size/total_blocks/free_blocks from statvfs (f_bsize, f_blocks, f_bfree),
 * `total` and `used` in GiB via utils.to_gb, but `free` in BYTES (Trove's quirk,
 * kept because the controller reads it as such).
 */

import { statfs } from 'node:fs/promises';
import { GuestError } from '../errors.ts';

export interface FilesystemStats {
  block_size: number;
  total_blocks: number;
  free_blocks: number;
  /** GiB, rounded to 2 decimals, at least 0.01 when non-zero. */
  total: number;
  /** Bytes (not GiB), as Trove reports it. */
  free: number;
  /** GiB, rounded to 2 decimals, at least 0.01 when non-zero. */
  used: number;
}

/** Python's round(x, 2) rounds half to even on the binary value; toFixed rounds the binary value too. */
function round2(x: number): number {
  return Number(x.toFixed(2));
}

/** Trove utils.to_gb: 0 → 0.0, else max(round(bytes / 1024**3, 2), 0.01). */
export function toGb(bytes: number): number {
  if (bytes === 0) return 0;
  return Math.max(round2(bytes / 1024 ** 3), 0.01);
}

export interface StatfsLike {
  bsize: number;
  blocks: number;
  bfree: number;
}

export function filesystemStatsFrom(s: StatfsLike): FilesystemStats {
  const total = s.blocks * s.bsize;
  const free = s.bfree * s.bsize;
  return {
    block_size: s.bsize,
    total_blocks: s.blocks,
    free_blocks: s.bfree,
    total: toGb(total),
    free,
    used: toGb(total - free),
  };
}

/** statvfs of `path` in Trove's shape; a missing path is Trove's "Filesystem not found". */
export async function filesystemStats(path: string): Promise<FilesystemStats> {
  try {
    return filesystemStatsFrom(await statfs(path));
  } catch (e) {
    throw new GuestError(`Filesystem not found (${path})`, { cause: e });
  }
}
