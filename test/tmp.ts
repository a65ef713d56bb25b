import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';

/** A fresh directory under the system's temp dir, removed when the current test finishes (GA_KEEP_AGENT=1 keeps it). */
export function testDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onTestFinished(() => {
    if (!process.env['GA_KEEP_AGENT']) rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}
