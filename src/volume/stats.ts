/**
 * Filesystem statistics in the shape of Trove's dbaas.get_filesystem_volume_stats:
 * block size and counts from statvfs, `total` and `used` in GB (utils.to_gb:
 * two decimals, never 0.0 for a non-empty size), `free` in bytes.
 */
import { statfs } from 'node:fs/promises';
import { GuestError } from '../errors.ts';

export interface FilesystemStats {
  block_size: number;
  total_blocks: number;
  free_blocks: number;
  total: number;
  free: number;
  used: number;
}

export function toGb(bytes: number): number {
  if (bytes === 0) return 0.0;
  return Math.max(Math.round((bytes / 1024 ** 3) * 100) / 100, 0.01);
}

export async function filesystemStats(path: string): Promise<FilesystemStats> {
  let s;
  try {
    s = await statfs(path);
  } catch (e) {
    throw new GuestError(`Filesystem not found (${path})`, { cause: e });
  }
  const total = s.blocks * s.bsize;
  const free = s.bfree * s.bsize;
  return { block_size: s.bsize, total_blocks: s.blocks, free_blocks: s.bfree, total: toGb(total), free, used: toGb(total - free) };
}
