import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { errorLogMark, mysqlPaths, serverErrorsSince } from '../../../../datastores/mysql/server.ts';

const made: string[] = [];
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'ga-errlog-'));
  made.push(d);
  return d;
};
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

describe("the server's own reasons from its error log", () => {
  const paths = mysqlPaths('process', tempDir(), '/var/lib/mysql');

  it('MariaDB and MySQL lines since the mark, without timestamps and tags, the last three', () => {
    writeFileSync(paths.errorLog, "2026-12-04 15:00:00 0 [ERROR] an older start's failure\n");
    const mark = errorLogMark(paths);
    expect(serverErrorsSince(paths, mark)).toBeNull();
    appendFileSync(
      paths.errorLog,
      '2026-12-04 15:12:01 0 [Note] Starting MariaDB\n' +
        "2026-12-04 15:12:01 0 [ERROR] /usr/sbin/mariadbd: unknown variable 'no_such_option=1'\n" +
        '2026-12-04 15:12:01 0 [ERROR] Aborting\n' +
        '2026-12-04T14:47:16.931785Z 0 [ERROR] [MY-010095] [Server] Failed to access directory for --secure-file-priv.\n' +
        '2026-12-04T14:47:16.931872Z 0 [ERROR] [MY-010119] [Server] Aborting\n',
    );
    expect(serverErrorsSince(paths, mark)).toBe("/usr/sbin/mariadbd: unknown variable 'no_such_option=1'; Failed to access directory for --secure-file-priv.");
  });

  it('a log rotated below the mark is read from its start; no log, no reasons', () => {
    writeFileSync(paths.errorLog, '2026-12-04 16:00:00 0 [ERROR] after rotation\n');
    expect(serverErrorsSince(paths, 1_000_000)).toBe('after rotation');
    const none = mysqlPaths('process', tempDir(), '/var/lib/mysql');
    expect(errorLogMark(none)).toBe(0);
    expect(serverErrorsSince(none, 0)).toBeNull();
  });
});
