// mount_volume, resize_fs and unmount_volume sent by Trove's own client to
// the agent, on a real loop device.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createFakeDatastore } from '../../fakes/datastore.ts';
import { startTestAgent, type TestAgent } from '../harness/agent.ts';
import { attachLoop } from '../harness/loop.ts';
import { PythonCaller } from '../harness/python-peer.ts';
import { exec } from '../../../src/process/exec.ts';
import { filesystemStats } from '../../../src/volume/stats.ts';

const rabbit = inject('rabbit');
const guestId = randomUUID();
let ta: TestAgent;
let caller: PythonCaller;
let loop: Awaited<ReturnType<typeof attachLoop>>;
const mountPoint = join(mkdtempSync(join(tmpdir(), 'ga-volrpc-')), 'data');

beforeAll(async () => {
  loop = await attachLoop(128 * 1024 * 1024);
  await exec('mkfs', ['--type', 'ext4', '-m', '5', '-q', '--', loop.device]);
  ta = await startTestAgent({ transportUrl: rabbit.url, guestId, key: 'k', factory: () => createFakeDatastore(mountPoint) });
  caller = await PythonCaller.start({ url: rabbit.url, guestId, key: 'k' });
});
afterAll(async () => {
  await caller?.close();
  await ta?.agent.stop();
  await exec('umount', [mountPoint], { okExitCodes: [0, 1, 32] }).catch(() => {});
  await loop?.detach();
  // Only once nothing is mounted there: rm must not walk into the volume.
  if (!(await exec('mountpoint', ['-q', mountPoint], { okExitCodes: [0, 1, 32] }).then((r) => r.exitCode === 0))) rmSync(dirname(mountPoint), { recursive: true, force: true });
});

describe('volume methods over RPC', () => {
  it('mounts, grows offline through resize_fs keeping the data, and unmounts', async () => {
    expect(await caller.api('mount_volume', { device_path: loop.device, mount_point: mountPoint })).toEqual({ ok: true, result: null });
    writeFileSync(join(mountPoint, 'keep.txt'), 'data');
    const before = (await filesystemStats(mountPoint)).total_blocks;
    await loop.resize(256 * 1024 * 1024);
    expect(await caller.api('resize_fs', { device_path: loop.device, mount_point: mountPoint, online: false })).toEqual({ ok: true, result: null });
    expect((await filesystemStats(mountPoint)).total_blocks).toBeGreaterThan(before * 1.8);
    expect(readFileSync(join(mountPoint, 'keep.txt'), 'utf8')).toBe('data');
    const fs = await caller.api('get_volume_info');
    expect(fs.ok && (fs.result as { total: number }).total).toBeGreaterThan(0.2);
    expect(await caller.api('unmount_volume', { device_path: loop.device, mount_point: mountPoint })).toEqual({ ok: true, result: null });
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(mountPoint);
  });

  it('refuses a relative or odd path with a clear error', async () => {
    const r = await caller.api('mount_volume', { device_path: 'loop0; rm -rf /', mount_point: mountPoint });
    expect(r.ok).toBe(false);
  });
});
