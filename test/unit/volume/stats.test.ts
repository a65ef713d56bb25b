import { describe, expect, it } from 'vitest';
import { filesystemStatsFrom, toGb } from '../../../src/volume/stats.ts';
import { parseMountInfo } from '../../../src/volume/mountinfo.ts';

describe('toGb (Trove utils.to_gb)', () => {
  it('matches Python values', () => {
    // Python: to_gb(0)=0.0, to_gb(1)=0.01, to_gb(1024**3)=1.0, to_gb(5*1024**3//2)=2.5, to_gb(123456789)=0.11
    expect(toGb(0)).toBe(0);
    expect(toGb(1)).toBe(0.01);
    expect(toGb(1024 ** 3)).toBe(1);
    expect(toGb((5 * 1024 ** 3) / 2)).toBe(2.5);
    expect(toGb(123456789)).toBe(0.11);
    expect(toGb(10 * 1024 ** 3 + 7 * 1024 ** 2)).toBe(10.01);
  });
});

describe('filesystemStatsFrom (dbaas.get_filesystem_volume_stats)', () => {
  it('has Trove keys and units: free in bytes, total/used in GiB', () => {
    const s = filesystemStatsFrom({ bsize: 4096, blocks: 262144, bfree: 131072 });
    expect(s).toEqual({ block_size: 4096, total_blocks: 262144, free_blocks: 131072, total: 1, free: 536870912, used: 0.5 });
    expect(Object.keys(s)).toEqual(['block_size', 'total_blocks', 'free_blocks', 'total', 'free', 'used']);
  });
});

describe('parseMountInfo', () => {
  it('reads mount point, type and source, unescaping octal', () => {
    const t = '36 35 98:0 / /mnt/a\\040b rw,noatime master:1 - ext4 /dev/loop3 rw,errors=continue\n' +
      '37 35 0:5 / /proc rw shared:2 - proc proc rw\n';
    expect(parseMountInfo(t)).toEqual([
      { mountPoint: '/mnt/a b', fsType: 'ext4', source: '/dev/loop3' },
      { mountPoint: '/proc', fsType: 'proc', source: 'proc' },
    ]);
  });
});
