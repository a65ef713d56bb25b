// Which binary logs an incremental logical backup of MySQL carries, given
// SHOW BINARY LOGS after its FLUSH BINARY LOGS and the parent's binlog-start.
import { describe, expect, it } from 'vitest';
import { binlogsSince, isLogicalBackup } from '../../../../datastores/mysql/dump.ts';

describe('binlogsSince', () => {
  const logs = ['binlog.000003', 'binlog.000004', 'binlog.000005', 'binlog.000006'];

  it('carries the closed files from the parent start, and the next backup starts at the file now written', () => {
    expect(binlogsSince(logs, 'binlog.000004')).toEqual({ files: ['binlog.000004', 'binlog.000005'], next: 'binlog.000006' });
    expect(binlogsSince(logs, 'binlog.000003')).toEqual({ files: ['binlog.000003', 'binlog.000004', 'binlog.000005'], next: 'binlog.000006' });
  });

  it('refuses when the parent start was purged, or is the file being written', () => {
    expect(() => binlogsSince(logs, 'binlog.000001')).toThrow(/is gone \(purged.*take a full backup/);
    expect(() => binlogsSince(logs, 'binlog.000006')).toThrow(/no closed binary log since binlog.000006/);
    expect(() => binlogsSince([], 'binlog.000001')).toThrow(/is gone/);
  });

  it('refuses a name that is not a binary log file (it becomes a path)', () => {
    expect(() => binlogsSince(['../../etc/shadow.000001', 'binlog.000002'], '../../etc/shadow.000001')).toThrow(/unexpected binary log name/);
    expect(() => binlogsSince(['binlog.000001', '-r.000002'], 'binlog.000001')).not.toThrow();
  });
});

describe('isLogicalBackup', () => {
  it('goes by the object name: .sql with a codec, maybe encrypted', () => {
    expect(isLogicalBackup('http://s/v1/AUTH_x/database_backups/b1.sql.gz')).toBe(true);
    expect(isLogicalBackup('http://s/v1/AUTH_x/database_backups/b1.sql.zst.enc')).toBe(true);
    expect(isLogicalBackup('http://s/v1/AUTH_x/database_backups/b1.xbstream.gz')).toBe(false);
    expect(isLogicalBackup('http://s/v1/AUTH_x/database_backups/b1.sql')).toBe(false);
  });
});
