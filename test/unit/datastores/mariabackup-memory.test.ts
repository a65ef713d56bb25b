import { describe, expect, it } from 'vitest';
import { prepareMemory } from '../../../datastores/mysql/backup.ts';

const MiB = 1024 * 1024;

describe('mariabackup --prepare buffer pool', () => {
  it('is a quarter of the free memory, whole MiB, between 100 MiB and 1 GiB', () => {
    expect(prepareMemory(2048 * MiB)).toBe(512 * MiB);
    expect(prepareMemory(2049 * MiB + 5)).toBe(512 * MiB);
    expect(prepareMemory(200 * MiB)).toBe(100 * MiB);
    expect(prepareMemory(24 * 1024 * MiB)).toBe(1024 * MiB);
  });
});
