// The restore's tool settings: mbstream's writer threads and mariabackup --prepare's buffer pool.
import { describe, expect, it } from 'vitest';
import { extractThreads, prepareMemory } from '../../../../datastores/mysql/backup.ts';

describe('restore tuning', () => {
  it('extracts with at least two writer threads and at most eight', () => {
    const n = extractThreads();
    expect(n).toBeGreaterThanOrEqual(2);
    expect(n).toBeLessThanOrEqual(8);
  });

  it('prepares with a quarter of the free memory, between 100 MiB and 1 GiB', () => {
    expect(prepareMemory(2 * 2 ** 30)).toBe('--use-memory=512M');
    expect(prepareMemory(64 * 2 ** 30)).toBe('--use-memory=1024M');
    expect(prepareMemory(200 * 2 ** 20)).toBe('--use-memory=100M');
    expect(prepareMemory(1000 * 2 ** 20 + 7)).toBe('--use-memory=250M');
  });
});
