import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createSystemdRunner } from '../../../src/service/systemd.ts';
import type { Exec } from '../../../src/process/exec.ts';

describe('systemd runner', () => {
  it('drives the unit with argv only', async () => {
    const calls: string[][] = [];
    const exec: Exec = async (file, args) => (calls.push([file, ...args]), { stdout: '', stderr: '', exitCode: 0 });
    const r = createSystemdRunner('mariadb.service', exec);
    const ctx = { log: pino({ level: 'silent' }), signal: new AbortController().signal };
    await r.start(ctx);
    await r.restart(ctx);
    await r.stop(ctx, { disableOnBoot: true });
    expect(calls).toEqual([
      ['systemctl', 'enable', 'mariadb.service'], ['systemctl', 'start', 'mariadb.service'], ['systemctl', 'restart', 'mariadb.service'],
      ['systemctl', 'stop', 'mariadb.service'], ['systemctl', 'disable', 'mariadb.service'],
    ]);
    expect(() => createSystemdRunner('x; rm -rf /', exec)).toThrow(/invalid systemd unit/);
  });
});
