// The WAL bookkeeping behind PostgreSQL incremental backups: history files
// as PostgreSQL 15 writes them, and which archived segments an incremental
// carries.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { historyOf, parseHistory, walSince, walTar } from '../../../datastores/postgresql/backup.ts';

const history = (label: string, start: string, stop: string) =>
  `START WAL LOCATION: 0/2000028 (file ${start})\nSTOP WAL LOCATION: 0/2000100 (file ${stop})\nCHECKPOINT LOCATION: 0/2000060\n` +
  `BACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-11-22 23:42:53 GMT\nLABEL: ${label}\nSTART TIMELINE: 1\nSTOP TIME: 2026-11-22 23:42:54 GMT\nSTOP TIMELINE: 1\n`;
const seg = (n: number) => `00000001000000000000000${n.toString(16).toUpperCase()}`;

let dir: string | null = null;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
});
function archive(files: Record<string, string>): string {
  dir = mkdtempSync(join(tmpdir(), 'ga-wal-'));
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text);
  return dir;
}

describe('postgresql backup bookkeeping', () => {
  it('reads a history file into the metadata keys Trove writes', () => {
    expect(parseHistory(history('full-1', seg(2), seg(3)))).toEqual({
      'start-segment': '0/2000028', 'start-wal-file': seg(2), 'stop-segment': '0/2000100', 'stop-wal-file': seg(3), 'checkpoint-location': '0/2000060', label: 'full-1',
    });
  });

  it('an incremental carries every segment from where its parent started, not the history files', () => {
    const a = archive({
      [seg(1)]: '', [seg(2)]: '', [`${seg(2)}.00000028.backup`]: history('full-1', seg(2), seg(2)), [seg(3)]: '', [seg(4)]: '',
      [`${seg(4)}.00000028.backup`]: history('inc-1', seg(4), seg(4)), [seg(5)]: '', '00000002.history': '',
    });
    expect(walSince(a, { label: 'full-1', 'stop-wal-file': seg(2) })).toEqual([seg(2), seg(3), seg(4), seg(5)]);
    expect(walSince(a, { label: 'inc-1' })).toEqual([seg(4), seg(5)]);
    // Without a label (older metadata) the start file names the history file.
    expect(walSince(a, { 'start-wal-file': seg(4) })).toEqual([seg(4), seg(5)]);
  });

  it('refuses when the parent is not in the archive, and when there is nothing to carry', () => {
    const a = archive({ [seg(5)]: '' });
    expect(() => walSince(a, { label: 'gone', 'stop-wal-file': seg(2) })).toThrow(/take a full backup/);
    expect(() => walTar(a, [])).toThrow(/no archived WAL/);
    expect(() => walTar(a, ['../etc/passwd'])).toThrow(/unexpected WAL file name/);
    expect(walTar(a, [seg(5)]).args).toEqual(['-cf', '-', '-C', a, '--', seg(5)]);
  });

  it('waits for the archiver to copy the history file, and gives up with a reason', async () => {
    const a = archive({});
    setTimeout(() => writeFileSync(join(a, `${seg(2)}.00000028.backup`), history('late', seg(2), seg(2))), 300);
    expect((await historyOf(a, 'late', AbortSignal.timeout(5000), 3000))['label']).toBe('late');
    await expect(historyOf(a, 'never', AbortSignal.timeout(5000), 300)).rejects.toThrow(/archive_mode/);
  });
});
