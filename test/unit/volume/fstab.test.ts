import { describe, expect, it } from 'vitest';
import { formatFstabLine, removeFstabEntry, upsertFstabEntry } from '../../../src/volume/fstab.ts';

const e = { spec: '/dev/vdb', file: '/var/lib/mysql', vfstype: 'ext4', options: 'defaults,noatime' };

describe('fstab editing', () => {
  it('formats the line as Trove does', () => {
    expect(formatFstabLine(e)).toBe('/dev/vdb\t/var/lib/mysql\text4\tdefaults,noatime\t0\t0');
  });
  it('appends once and keeps other lines and comments', () => {
    const base = '# comment\nUUID=abc / ext4 errors=remount-ro 0 1\n';
    const once = upsertFstabEntry(base, e);
    expect(once).toBe(base + formatFstabLine(e) + '\n');
    expect(upsertFstabEntry(once, e)).toBe(once);
  });
  it('handles a file without trailing newline and an empty file', () => {
    expect(upsertFstabEntry('a b c d 0 0', e)).toBe('a b c d 0 0\n' + formatFstabLine(e) + '\n');
    expect(upsertFstabEntry('', e)).toBe(formatFstabLine(e) + '\n');
  });
  it('replaces a stale entry for the same mount point', () => {
    const stale = '/dev/vdc /var/lib/mysql xfs defaults 0 0\n/dev/vdc /var/lib/mysql xfs defaults 0 0\n';
    expect(upsertFstabEntry(stale, e)).toBe(formatFstabLine(e) + '\n');
  });
  it('escapes spaces in paths and matches them back', () => {
    const sp = { ...e, file: '/mnt/a b' };
    const c = upsertFstabEntry('', sp);
    expect(c).toContain('/mnt/a\\040b');
    expect(upsertFstabEntry(c, sp)).toBe(c);
    expect(removeFstabEntry(c, '/mnt/a b')).toBe('');
  });
  it('removes only the matching mount point', () => {
    const c = 'x / ext4 d 0 1\n' + formatFstabLine(e) + '\n';
    expect(removeFstabEntry(c, '/var/lib/mysql')).toBe('x / ext4 d 0 1\n');
    expect(removeFstabEntry(c, '/nope')).toBe(c);
  });
});
