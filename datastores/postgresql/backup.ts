/**
 * PostgreSQL backups in the layout of Trove's backup tool (upstream
 * backup/drivers/postgres.py):
 *
 * - full: `pg_basebackup` as one tar on stdout with the WAL it needs fetched
 *   into it, stored as `<id>.tar.gz`;
 * - incremental: a fresh backup start/stop point, then the WAL files archived
 *   since the parent's base backup, as a tar, also `<id>.tar.gz`.
 *
 * Both carry, as object metadata, what the backup's `.backup` history file in
 * the WAL archive says (start and stop segment and WAL file, checkpoint,
 * label); an incremental finds its parent's history file by those. Restore
 * puts the full backup in the data directory and each incremental's WAL in
 * the archive; archive recovery (recovery.signal) then replays all of it.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BackupFetcher, OpContext, ToolSpec } from '../../src/datastore.ts';
import { GuestError } from '../../src/errors.ts';

const WAL = /^[0-9A-F]{24}$/;
const HISTORY = /^([0-9A-F]{24})\.[0-9A-F]{8}\.backup$/;

/** The metadata keys Trove's driver writes (X-Object-Meta-Start-Segment, ...). */
export function parseHistory(text: string): Record<string, string> {
  const meta: Record<string, string> = {};
  const start = /START WAL LOCATION: (\S+) \(file (\S+)\)/.exec(text);
  if (start) (meta['start-segment'] = start[1]!), (meta['start-wal-file'] = start[2]!);
  const stop = /STOP WAL LOCATION: (\S+) \(file (\S+)\)/.exec(text);
  if (stop) (meta['stop-segment'] = stop[1]!), (meta['stop-wal-file'] = stop[2]!);
  const cp = /CHECKPOINT LOCATION: (\S+)/.exec(text);
  if (cp) meta['checkpoint-location'] = cp[1]!;
  const label = /LABEL: (.*)/.exec(text);
  if (label) meta['label'] = label[1]!.trim();
  return meta;
}

/** History files in the archive, newest first (WAL names sort by position). */
function histories(archive: string): string[] {
  return existsSync(archive) ? readdirSync(archive).filter((f) => HISTORY.test(f)).sort().reverse() : [];
}

/**
 * The metadata of the backup labelled `label`, once the archiver has copied
 * its history file (it may land a little after the backup ends).
 */
export async function historyOf(archive: string, label: string, signal: AbortSignal, timeoutMs = 60_000): Promise<Record<string, string>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const f of histories(archive)) {
      const meta = parseHistory(readFileSync(join(archive, f), 'utf8'));
      if (meta['label'] === label) return meta;
    }
    if (Date.now() > deadline) {
      throw new GuestError(`the WAL archive ${archive} has no history file for backup ${label} after ${timeoutMs / 1000} s: is archive_mode on and archive_command working?`);
    }
    await sleep(250, undefined, { signal });
  }
}

/**
 * The archived WAL an incremental backup on top of `parent` must carry: every
 * segment from the one the parent's base backup started in.
 */
export function walSince(archive: string, parent: Record<string, string>): string[] {
  const label = parent['label'];
  const startFile = parent['start-wal-file'] ?? parent['stop-wal-file'];
  const found = histories(archive).find((f) => {
    if (label && parseHistory(readFileSync(join(archive, f), 'utf8'))['label'] === label) return true;
    return !label && startFile !== undefined && f.startsWith(`${startFile}.`);
  });
  if (!found) {
    throw new GuestError('Cannot find the parent backup in the WAL archive (it was cleaned or the parent comes from another instance): take a full backup.');
  }
  const from = HISTORY.exec(found)![1]!;
  return readdirSync(archive).filter((f) => WAL.test(f) && f >= from).sort();
}

/** The tar of archived WAL files an incremental backup streams. */
export function walTar(archive: string, files: string[]): ToolSpec {
  if (files.length === 0) throw new GuestError('no archived WAL since the parent backup');
  for (const f of files) if (!WAL.test(f)) throw new GuestError(`unexpected WAL file name ${f}`);
  return { file: '/usr/bin/tar', args: ['-cf', '-', '-C', archive, '--', ...files] };
}

/**
 * Restores the chain ending at `location`: the full backup into `dataDir`,
 * the WAL of each incremental, oldest first, into `archive`. Returns whether
 * any incremental was applied.
 */
export async function restoreChain(
  fetcher: BackupFetcher,
  location: string,
  checksum: string | null,
  paths: { dataDir: string; archive: string },
  ctx: OpContext,
): Promise<number> {
  const chain = await fetcher.chain(location, checksum, ctx);
  const [full, ...incrementals] = chain;
  // 128 KiB records (-b 256, -B reassembling them from the pipe's short reads) instead of tar's
  // 10 KiB: a 10 KiB write per record cost tar about twice the system time on a 2 GB data dir.
  const extract = (dir: string): ToolSpec => ({ file: '/usr/bin/tar', args: ['-x', '--no-same-owner', '-b', '256', '-B', '-C', dir] });
  ctx.log.info({ full: full!.location, incrementals: incrementals.length }, 'restoring backup chain');
  await fetcher.restoreInto(full!.location, full!.checksum, extract(paths.dataDir), ctx);
  for (const inc of incrementals) await fetcher.restoreInto(inc.location, inc.checksum, extract(paths.archive), ctx);
  return incrementals.length;
}
