/**
 * Parity with the real thing: Trove 18's own CONF (oslo.config) resolves the
 * same files, dirs and environment, and every option value must match ours.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOptionValues, type ConfigSource } from '../../../src/config/load.ts';
import { TROVE_OPTIONS } from '../../../src/config/options.ts';
import { exec } from '../../../src/process/exec.ts';

const PYTHON = '/usr/bin/python3';
const DUMP = join(import.meta.dirname, 'oslo-dump.py');
const FIXTURES = join(import.meta.dirname, '../../fixtures/config');

let dir: string;
beforeAll(async () => {
  if (!existsSync(PYTHON) || !existsSync('/usr/lib/python3/dist-packages/trove/common/cfg.py')) {
    throw new Error(
      'Trove 18 is needed as the reference: DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-trove',
    );
  }
  dir = mkdtempSync(join(tmpdir(), 'cfg-parity-'));
});
afterAll(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

function write(name: string, text: string): string {
  const p = join(dir, name);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, text);
  return p;
}

async function compare(sources: ConfigSource[], env: Record<string, string> = {}): Promise<void> {
  const argv = sources.flatMap((s) => [s.kind === 'file' ? '--config-file' : '--config-dir', s.path]);
  const { stdout } = await exec(PYTHON, [DUMP, ...argv], { env, timeoutMs: 60_000 });
  const oslo = JSON.parse(stdout) as Record<string, Record<string, unknown>>;
  const ours = loadOptionValues({ sources, env });
  let compared = 0;
  for (const [group, options] of Object.entries(ours)) {
    const theirs = oslo[group];
    expect(theirs, `group ${group}`).toBeDefined();
    for (const [name, value] of Object.entries(options)) {
      if (!Object.hasOwn(theirs!, name)) continue; // tenant_id: written by Trove, not registered
      const mine = TROVE_OPTIONS[group]?.[name]?.kind === 'rangelist' && Array.isArray(value) ? value.map(asRange) : value;
      expect([group, name, mine]).toEqual([group, name, theirs![name]]);
      compared += 1;
    }
  }
  expect(compared).toBeGreaterThan(300);
}

/** Our Range item "N" / "N-M" as the dump script encodes Python's inclusive range. */
function asRange(item: string): { range: [number, number] } {
  const m = /^(-?\d+)(?:-(-?\d+))?$/u.exec(item);
  if (m === null) throw new Error(`not a range: ${item}`);
  return { range: [Number(m[1]), Number(m[2] ?? m[1])] };
}

describe('config parity with Trove 18 oslo.config', () => {
  it('the injected guest_info.conf + trove-guestagent.conf pair', async () => {
    await compare([
      { kind: 'file', path: join(FIXTURES, 'guest_info.conf') },
      { kind: 'file', path: join(FIXTURES, 'trove-guestagent.conf') },
    ]);
  });

  it('defaults only', async () => {
    await compare([{ kind: 'file', path: write('empty.conf', '[DEFAULT]\n') }]);
  });

  it('dirs, ordering, env, deprecated names, substitution, quoting, continuation and types', async () => {
    const a = write(
      'a.conf',
      [
        '[DEFAULT]',
        'guest_id = g',
        'report_interval = 10',
        'ignore_users = x, y,',
        'conductor_queue = "quoted queue"',
        'control_exchange: ex',
        'debug = On',
        '# comment = 1',
        '; other = 2',
        '[MySQL]',
        'tcp_ports = 3306, 4000-4010,9000-8990',
        'mount_point = /data',
        'device_path = ${mysql.mount_point}/dev/$$x \\$y',
        'root_controller = a',
        '  b',
        '[oslo_messaging_rabbit]',
        'kombu_reconnect_delay = 2.5',
        'rabbit_ha_queues = yes',
        '[DEFAULT]',
        'rabbit_retry_backoff = 7',
        '',
      ].join('\n'),
    );
    write('d/20-b.conf', '[DEFAULT]\nreport_interval = 3\nusage_timeout = 99\n');
    write('d/10-a.conf', '[DEFAULT]\nreport_interval = 2\nagent_call_low_timeout = 5\n[redis]\nmount_point = /r\n');
    write('d/ignored.txt', '[DEFAULT]\nreport_interval = 1000\n');
    const b = write('b.conf', '[DEFAULT]\nusage_timeout = 42\n[postgresql]\nignore_dbs =\n');
    const d = join(dir, 'd');
    await compare(
      [
        { kind: 'file', path: a },
        { kind: 'dir', path: d },
        { kind: 'file', path: b },
      ],
      { OS_MYSQL__MOUNT_POINT: '/env', OS_DEFAULT__STATE_CHANGE_WAIT_TIME: '77', OS_REDIS__VOLUME_SUPPORT: 'false' },
    );
    await compare([
      { kind: 'dir', path: d },
      { kind: 'file', path: a },
    ]);
  });
});
