import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chown, mkdir, mkdtemp, readFile, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { exec } from '../../../src/process/exec.ts';
import { createVolumeManager, type VolumeManager } from '../../../src/volume/volume-manager.ts';
import { GuestError, UnprocessableError } from '../../../src/errors.ts';
import { attachLoop, type LoopDevice } from '../harness/loop.ts';

const MiB = 1024 * 1024;

/** CAP_SYS_RESOURCE is capability bit 24 (linux/capability.h). */
function hasCapSysResource(): boolean {
  const eff = /CapEff:\s*([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0';
  return (BigInt(`0x${eff}`) >> 24n) & 1n ? true : false;
}

async function requireTools(): Promise<void> {
  for (const [tool, pkg] of [['blkid', 'util-linux'], ['mkfs.ext4', 'e2fsprogs'], ['resize2fs', 'e2fsprogs'],
    ['rsync', 'rsync'], ['mkfs.xfs', 'xfsprogs'], ['xfs_growfs', 'xfsprogs'], ['df', 'coreutils']] as const) {
    await exec('sh', ['-c', 'command -v "$1"', 'sh', tool]).catch(() => {
      throw new Error(`${tool} is missing: apt-get install -y --no-install-recommends ${pkg}`);
    });
  }
}

async function dfBytes(mp: string): Promise<{ total: number; avail: number }> {
  const out = (await exec('df', ['-B1', '--output=size,avail', '--', mp])).stdout.trim().split('\n')[1] ?? '';
  const [size, avail] = out.trim().split(/\s+/).map(Number);
  return { total: size ?? NaN, avail: avail ?? NaN };
}

describe('volume manager on loop devices', () => {
  let dir: string;
  let fstab: string;
  let vm: VolumeManager;
  const loops: LoopDevice[] = [];
  const log = pino({ level: 'silent' });

  async function loop(bytes: number): Promise<LoopDevice> {
    const l = await attachLoop(bytes);
    loops.push(l);
    return l;
  }

  beforeAll(async () => {
    await requireTools();
    dir = await mkdtemp(join(tmpdir(), 'volume-it-'));
    fstab = join(dir, 'fstab');
    await writeFile(fstab, '# test fstab\n');
    vm = createVolumeManager({ exec, log, fstabPath: fstab, tmpMountParent: join(dir, 'tmpmnt') });
  });

  afterAll(async () => {
    const errors: unknown[] = [];
    for (const l of loops.reverse()) await l.detach().catch((e: unknown) => errors.push(e));
    if (dir) await rm(dir, { recursive: true, force: true });
    if (errors.length) throw errors[0];
  });

  it('formats a blank device, then refuses to format it again and leaves data intact', async () => {
    const l = await loop(64 * MiB);
    expect(await vm.isFormatted(l.device)).toBe(false);
    await vm.format(l.device);
    expect(await vm.isFormatted(l.device)).toBe(true);
    expect(await vm.detectFsType(l.device)).toBe('ext4');
    // reserved blocks = 5% (format_options -m 5)
    const d = await exec('dumpe2fs', ['-h', '--', l.device]);
    const blocks = Number(/Block count:\s+(\d+)/.exec(d.stdout)?.[1]);
    const reserved = Number(/Reserved block count:\s+(\d+)/.exec(d.stdout)?.[1]);
    expect(reserved / blocks).toBeCloseTo(0.05, 2);

    const mp = join(dir, 'fmt');
    await vm.mount(l.device, mp, { writeFstab: false });
    await writeFile(join(mp, 'keep.txt'), 'precious');
    await vm.unmount(mp);
    await expect(vm.format(l.device)).rejects.toBeInstanceOf(UnprocessableError);
    expect(await vm.ensureFormatted(l.device)).toBe(false);
    await vm.mount(l.device, mp, { writeFstab: false });
    expect(await readFile(join(mp, 'keep.txt'), 'utf8')).toBe('precious');
    await vm.unmount(mp);
  });

  it('mount and unmount are idempotent; fstab entry written once', async () => {
    const l = await loop(64 * MiB);
    expect(await vm.ensureFormatted(l.device)).toBe(true);
    const mp = join(dir, 'data dir');
    await vm.mount(l.device, mp);
    await vm.mount(l.device, mp);
    expect(await vm.isMounted(mp)).toBe(true);
    expect(await vm.mountPoints(l.device)).toEqual([mp]);
    const content = await readFile(fstab, 'utf8');
    const line = `${l.device}\t${mp.replace(/ /g, '\\040')}\text4\tdefaults,noatime\t0\t0`;
    expect(content.split('\n').filter((x) => x === line)).toHaveLength(1);
    expect(content.startsWith('# test fstab\n')).toBe(true);
    const opts = (await exec('findmnt', ['-n', '-o', 'OPTIONS', '--', mp])).stdout;
    expect(opts).toContain('noatime');

    await vm.unmount(mp);
    await vm.unmount(mp);
    expect(await vm.isMounted(mp)).toBe(false);
    // Trove keeps the fstab line on unmount; removal is explicit.
    expect(await readFile(fstab, 'utf8')).toContain(line);
    await vm.unmount(mp, { removeFstab: true });
    expect(await readFile(fstab, 'utf8')).toBe('# test fstab\n');
  });

  it('setReadaheadSize sets the device readahead', async () => {
    const l = await loop(64 * MiB);
    await vm.setReadaheadSize(l.device, 512);
    expect((await exec('blockdev', ['--getra', l.device])).stdout.trim()).toBe('512');
    await expect(vm.setReadaheadSize(l.device, -1)).rejects.toThrow(/Invalid readahead/);
  });

  it('rejects bad paths and non-block devices', async () => {
    await expect(vm.isFormatted('relative/dev')).rejects.toThrow(/absolute/);
    await expect(vm.isMounted('/mnt/a\nb')).rejects.toThrow(/control/);
    await expect(vm.isFormatted(fstab)).rejects.toThrow(/not a block device/);
  });

  it('migrateData copies files preserving ownership and modes', async () => {
    const l = await loop(64 * MiB);
    await vm.format(l.device);
    const src = join(dir, 'src');
    await mkdir(join(src, 'sub'), { recursive: true });
    await writeFile(join(src, 'a.txt'), 'hello');
    await writeFile(join(src, 'sub', 'b.bin'), Buffer.alloc(4096, 7));
    await chown(join(src, 'a.txt'), 1234, 2345);
    await chmod(join(src, 'a.txt'), 0o640);
    await chmod(join(src, 'sub'), 0o750);
    await vm.migrateData(src, l.device);
    expect(await vm.mountPoints(l.device)).toEqual([]);

    const mp = join(dir, 'mig');
    await vm.mount(l.device, mp, { writeFstab: false });
    const a = await stat(join(mp, 'a.txt'));
    expect([a.uid, a.gid, a.mode & 0o7777]).toEqual([1234, 2345, 0o640]);
    expect((await stat(join(mp, 'sub'))).mode & 0o7777).toBe(0o750);
    expect(await readFile(join(mp, 'a.txt'), 'utf8')).toBe('hello');
    expect((await readFile(join(mp, 'sub', 'b.bin'))).equals(Buffer.alloc(4096, 7))).toBe(true);
    await vm.unmount(mp);
  });

  it('getFilesystemStats agrees with df -B1', async () => {
    const l = await loop(128 * MiB);
    await vm.format(l.device);
    const mp = join(dir, 'stats');
    await vm.mount(l.device, mp, { writeFstab: false });
    await writeFile(join(mp, 'f'), Buffer.alloc(8 * MiB, 1));
    await exec('sync', []);
    const s = await vm.getFilesystemStats(mp);
    const df = await dfBytes(mp);
    expect(s.total_blocks * s.block_size).toBe(df.total);
    expect(s.total).toBe(Number((df.total / 1024 ** 3).toFixed(2)));
    // df "avail" excludes the reserved 5%; Trove's free is f_bfree (includes it).
    expect(s.free).toBeGreaterThanOrEqual(df.avail);
    expect(s.free).toBe(s.free_blocks * s.block_size);
    await vm.unmount(mp);
  });

  it('resizeFs grows ext4 offline (unmount, e2fsck, resize2fs, remount)', async () => {
    const l = await loop(64 * MiB);
    await vm.format(l.device);
    const mp = join(dir, 'grow');
    await vm.mount(l.device, mp, { writeFstab: false });
    await writeFile(join(mp, 'x'), 'data');
    const before = await vm.getFilesystemStats(mp);
    await l.resize(128 * MiB);
    await vm.resizeFs(l.device, mp, { online: false });
    expect(await vm.isMounted(mp)).toBe(true);
    const after = await vm.getFilesystemStats(mp);
    expect(after.total_blocks).toBeGreaterThan(before.total_blocks * 1.8);
    expect(after.total).toBeGreaterThan(before.total);
    expect(await readFile(join(mp, 'x'), 'utf8')).toBe('data');
    await vm.unmount(mp);
  });

  it('resizeFs grows ext4 online while mounted (needs CAP_SYS_RESOURCE)', async () => {
    const l = await loop(64 * MiB);
    await vm.format(l.device);
    const mp = join(dir, 'grow-online');
    await vm.mount(l.device, mp, { writeFstab: false });
    const t0 = (await vm.getFilesystemStats(mp)).total_blocks;
    await l.resize(128 * MiB);
    if (!hasCapSysResource()) {
      // The kernel refuses EXT4_IOC_RESIZE_FS without CAP_SYS_RESOURCE (containers often drop it):
      // the real resize2fs call must fail as a GuestError and leave the filesystem mounted.
      const err = await vm.resizeFs(l.device, mp, { online: true }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GuestError);
      expect(String((err as GuestError).cause)).toMatch(/Permission denied/);
    } else {
      await vm.resizeFs(l.device, mp, { online: true });
      expect((await vm.getFilesystemStats(mp)).total_blocks).toBeGreaterThan(t0 * 1.8);
    }
    expect(await vm.isMounted(mp)).toBe(true);
    await vm.unmount(mp);
  });

  it('resizeFs grows xfs with xfs_growfs', async () => {
    const l = await loop(320 * MiB);
    await vm.format(l.device, { fsType: 'xfs', options: [] });
    expect(await vm.detectFsType(l.device)).toBe('xfs');
    const mp = join(dir, 'xfs');
    await vm.mount(l.device, mp, { fsType: 'xfs', writeFstab: false });
    const t0 = (await vm.getFilesystemStats(mp)).total_blocks;
    await l.resize(640 * MiB);
    await vm.resizeFs(l.device, mp, { online: true });
    expect((await vm.getFilesystemStats(mp)).total_blocks).toBeGreaterThan(t0 * 1.8);
    await vm.unmount(mp);
  });
});
