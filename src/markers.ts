/**
 * Trove's prepare markers (trove/guestagent/datastore/service.py
 * BaseDbStatus): `.guestagent.prepare.start` is written when prepare begins,
 * `.guestagent.prepare.end` when it succeeded. Heartbeats are sent only once
 * the end marker exists; a start marker without an end marker means an
 * earlier prepare failed or was interrupted.
 */
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const PREPARE_START = '.guestagent.prepare.start';
export const PREPARE_END = '.guestagent.prepare.end';

export class PrepareMarkers {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
  }
  get started(): boolean {
    return existsSync(join(this.dir, PREPARE_START));
  }
  get completed(): boolean {
    return existsSync(join(this.dir, PREPARE_END));
  }
  /** When prepare started (ms since epoch), or null. */
  startedAt(): number | null {
    try {
      return statSync(join(this.dir, PREPARE_START)).mtimeMs;
    } catch {
      return null;
    }
  }
  markStarted(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFileSync(join(this.dir, PREPARE_START), '');
  }
  markCompleted(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFileSync(join(this.dir, PREPARE_END), '');
  }
}
