/**
 * Volume handling of the guest (Trove trove/guestagent/volume.py VolumeDevice and
 * VolumeMountPoint): format, mount (+fstab), unmount, migrate data, resize, stats.
 * Every program runs through the injected Exec with an argv array.
 */
import { chmod, mkdir, readFile, stat, statfs, writeFile, rename, rmdir, mkdtemp } from 'node:fs/promises';
import { dirname, join, isAbsolute } from 'node:path';
import { BadRequestError, GuestError, UnprocessableError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Exec } from '../process/exec.ts';
import { removeFstabEntry, upsertFstabEntry } from './fstab.ts';
import { parseMountInfo, type MountInfo } from './mountinfo.ts';
import { filesystemStatsFrom, type FilesystemStats } from './stats.ts';

/** Trove cfg defaults. */
export const VOLUME_DEFAULTS = {
  fsType: 'ext4',
  formatOptions: ['-m', '5'],
  formatTimeoutMs: 120_000,
  mountOptions: 'defaults,noatime',
} as const;

export type FsType = 'ext3' | 'ext4' | 'xfs';

export interface FormatOptions {
  /** Default 'ext4' (CONF.volume_fstype). */
  fsType?: FsType | undefined;
  /** mkfs options as argv (CONF.format_options, default ['-m', '5']). */
  options?: readonly string[] | undefined;
  /** Default 120000 (CONF.volume_format_timeout). */
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

export interface MountOptions {
  fsType?: FsType | undefined;
  /** Default 'defaults,noatime' (CONF.mount_options). */
  options?: string | undefined;
  /** Write the fstab entry (once). Default true. */
  writeFstab?: boolean | undefined;
  signal?: AbortSignal | undefined;
}

export interface ResizeOptions {
  /** Grow while mounted (resize2fs online / xfs_growfs). Default false: unmount, fsck, resize, remount. */
  online?: boolean | undefined;
  fsType?: FsType | undefined;
  mountOptions?: string | undefined;
  signal?: AbortSignal | undefined;
}

export interface VolumeManager {
  /** Filesystem type found on the device by blkid, or null if none. */
  detectFsType(device: string, signal?: AbortSignal): Promise<string | null>;
  /** True if the device carries any filesystem signature. */
  isFormatted(device: string, signal?: AbortSignal): Promise<boolean>;
  /** mkfs the device; throws UnprocessableError if it already has a filesystem (data is never wiped). */
  format(device: string, opts?: FormatOptions): Promise<void>;
  /** Trove's VolumeDevice.format: format only if no filesystem is found yet. Returns true if it formatted. */
  ensureFormatted(device: string, opts?: FormatOptions): Promise<boolean>;
  mount(device: string, mountPoint: string, opts?: MountOptions): Promise<void>;
  /** Unmounts if mounted (no-op otherwise). Keeps the fstab entry unless removeFstab, as Trove does. */
  unmount(mountPoint: string, opts?: { removeFstab?: boolean; signal?: AbortSignal }): Promise<void>;
  isMounted(mountPoint: string): Promise<boolean>;
  /** Mount points of a device from mountinfo (Trove: mount_points). */
  mountPoints(device: string): Promise<string[]>;
  /** Copies sourceDir's content onto the device (mounted at a temp point) with rsync, keeping owners/modes/xattrs. */
  migrateData(sourceDir: string, device: string, opts?: { targetSubdir?: string; fsType?: FsType; signal?: AbortSignal }): Promise<void>;
  resizeFs(device: string, mountPoint: string, opts?: ResizeOptions): Promise<void>;
  getFilesystemStats(path: string): Promise<FilesystemStats>;
  /** blockdev --setra (Trove: set_readahead_size); `sectors` in 512-byte sectors. */
  setReadaheadSize(device: string, sectors: number, signal?: AbortSignal): Promise<void>;
}

export interface VolumeManagerDeps {
  exec: Exec;
  log: Logger;
  /** Default '/etc/fstab'. */
  fstabPath?: string | undefined;
  /** Default '/proc/self/mountinfo'. */
  mountInfoPath?: string | undefined;
  /** Parent dir of migrateData's temporary mount point. Default '/mnt'. */
  tmpMountParent?: string | undefined;
}

export function validatePath(p: string, what: string): string {
  if (typeof p !== 'string' || p === '' || !isAbsolute(p) || /[\0\n\r]/.test(p)) {
    throw new BadRequestError(`Invalid ${what}: must be an absolute path without control characters.`);
  }
  return p.length > 1 ? p.replace(/\/+$/, '') : p;
}

export function createVolumeManager(deps: VolumeManagerDeps): VolumeManager {
  const { exec, log } = deps;
  const fstabPath = deps.fstabPath ?? '/etc/fstab';
  const mountInfoPath = deps.mountInfoPath ?? '/proc/self/mountinfo';
  const tmpParent = deps.tmpMountParent ?? '/mnt';

  async function checkDevice(device: string): Promise<string> {
    validatePath(device, 'device path');
    let s;
    try {
      s = await stat(device);
    } catch (err) {
      throw new GuestError(`Device '${device}' is not ready.`, { cause: err, retryable: true });
    }
    if (!s.isBlockDevice()) throw new BadRequestError(`'${device}' is not a block device.`);
    return device;
  }

  async function mounts(): Promise<MountInfo[]> {
    return parseMountInfo(await readFile(mountInfoPath, 'utf8'));
  }

  async function detectFsType(device: string, signal?: AbortSignal): Promise<string | null> {
    await checkDevice(device);
    // blkid -p probes the device directly (no cache); exit 2 means no signature found.
    const r = await exec('blkid', ['-p', '-s', 'TYPE', '-o', 'value', '--', device], { signal, okExitCodes: [0, 2], log });
    const t = r.stdout.trim();
    return r.exitCode === 2 || t === '' ? null : t;
  }

  async function format(device: string, opts: FormatOptions = {}): Promise<void> {
    const fsType = opts.fsType ?? VOLUME_DEFAULTS.fsType;
    const existing = await detectFsType(device, opts.signal);
    if (existing !== null) {
      throw new UnprocessableError(`Device '${device}' already has a ${existing} filesystem; refusing to format it.`);
    }
    const options = [...(opts.options ?? VOLUME_DEFAULTS.formatOptions)];
    for (const o of options) if (/[\0\n]/.test(o)) throw new BadRequestError('Invalid format option.');
    const argv = fsType === 'xfs' ? ['mkfs.xfs', [...options, '--', device]] as const
      : ['mkfs', ['--type', fsType, ...options, '--', device]] as const;
    log.info({ device, fsType }, 'formatting volume');
    try {
      await exec(argv[0], argv[1], { signal: opts.signal, timeoutMs: opts.timeoutMs ?? VOLUME_DEFAULTS.formatTimeoutMs, log });
    } catch (err) {
      throw new GuestError(`Could not format '${device}'.`, { cause: err });
    }
    if ((await detectFsType(device, opts.signal)) !== fsType) {
      throw new GuestError(`Volume '${device}' does not appear to be formatted.`);
    }
  }

  async function isMounted(mountPoint: string): Promise<boolean> {
    const mp = validatePath(mountPoint, 'mount point');
    return (await mounts()).some((m) => m.mountPoint === mp);
  }

  async function mountPoints(device: string): Promise<string[]> {
    validatePath(device, 'device path');
    return (await mounts()).filter((m) => m.source === device).map((m) => m.mountPoint);
  }

  async function writeFstabFile(content: string): Promise<void> {
    // Write beside the target and rename: a crash never leaves a half-written fstab.
    const tmp = join(dirname(fstabPath), `.fstab.${process.pid}.tmp`);
    await writeFile(tmp, content, { mode: 0o644 });
    await chmod(tmp, 0o644); // umask must not change fstab's mode (Trove: install -m 644)
    await rename(tmp, fstabPath);
  }

  async function readFstab(): Promise<string> {
    try {
      return await readFile(fstabPath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
      throw err;
    }
  }

  async function mount(device: string, mountPoint: string, opts: MountOptions = {}): Promise<void> {
    await checkDevice(device);
    const mp = validatePath(mountPoint, 'mount point');
    const fsType = opts.fsType ?? VOLUME_DEFAULTS.fsType;
    const options = opts.options ?? VOLUME_DEFAULTS.mountOptions;
    if (/[\s\0]/.test(options)) throw new BadRequestError('Invalid mount options.');
    await mkdir(mp, { recursive: true });
    const here = (await mounts()).filter((m) => m.mountPoint === mp);
    if (here.some((m) => m.source === device)) {
      log.debug({ device, mountPoint: mp }, 'already mounted');
    } else if (here.length > 0) {
      throw new UnprocessableError(`'${mp}' is already a mount point of another device.`);
    } else {
      try {
        await exec('mount', ['-t', fsType, '-o', options, '--', device, mp], { signal: opts.signal, log });
      } catch (err) {
        throw new GuestError(`Could not mount '${mp}'.`, { cause: err });
      }
    }
    if (opts.writeFstab ?? true) {
      const before = await readFstab();
      const after = upsertFstabEntry(before, { spec: device, file: mp, vfstype: fsType, options });
      if (after !== before) await writeFstabFile(after);
    }
  }

  async function unmount(mountPoint: string, opts: { removeFstab?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    const mp = validatePath(mountPoint, 'mount point');
    if (await isMounted(mp)) {
      try {
        await exec('umount', ['--', mp], { signal: opts.signal, log });
      } catch (err) {
        throw new GuestError(`Error unmounting '${mp}'.`, { cause: err });
      }
    } else {
      log.debug({ mountPoint: mp }, 'not mounted, nothing to unmount');
    }
    if (opts.removeFstab) {
      const before = await readFstab();
      const after = removeFstabEntry(before, mp);
      if (after !== before) await writeFstabFile(after);
    }
  }

  async function migrateData(
    sourceDir: string,
    device: string,
    opts: { targetSubdir?: string; fsType?: FsType; signal?: AbortSignal } = {},
  ): Promise<void> {
    const src = validatePath(sourceDir, 'source directory');
    await checkDevice(device);
    if (opts.targetSubdir !== undefined && !/^[A-Za-z0-9._-]+$/.test(opts.targetSubdir)) {
      throw new BadRequestError('Invalid target subdirectory.');
    }
    await mkdir(tmpParent, { recursive: true });
    const tmp = await mkdtemp(join(tmpParent, 'volume-'));
    await mount(device, tmp, { fsType: opts.fsType, writeFstab: false, signal: opts.signal });
    try {
      const target = opts.targetSubdir ? join(tmp, opts.targetSubdir) : tmp;
      // Trailing slash: copy the directory's content, not the directory itself.
      await exec('rsync', ['--safe-links', '--perms', '--recursive', '--owner', '--group', '--xattrs', '--sparse',
        '--times', '--links', '--', `${src}/`, target], { signal: opts.signal, log });
    } catch (err) {
      throw new GuestError('Could not migrate data.', { cause: err });
    } finally {
      await unmount(tmp);
      await rmdir(tmp);
    }
  }

  async function resizeFs(device: string, mountPoint: string, opts: ResizeOptions = {}): Promise<void> {
    await checkDevice(device);
    const mp = validatePath(mountPoint, 'mount point');
    const signal = opts.signal;
    const fsType = (await detectFsType(device, signal)) ?? opts.fsType ?? VOLUME_DEFAULTS.fsType;
    const wasMounted = await isMounted(mp);
    try {
      if (fsType === 'xfs') {
        // xfs grows only while mounted.
        if (!wasMounted) await mount(device, mp, { fsType: 'xfs', options: opts.mountOptions, writeFstab: false, signal });
        await exec('xfs_growfs', ['--', mp], { signal, log });
        if (!wasMounted) await unmount(mp, { signal });
        return;
      }
      if (opts.online && wasMounted) {
        await exec('resize2fs', ['--', device], { signal, log });
        return;
      }
      if (wasMounted) await unmount(mp, { signal });
      try {
        // e2fsck -p exit 1 means "errors corrected": fine to go on.
        await exec('e2fsck', ['-f', '-p', '--', device], { signal, okExitCodes: [0, 1], log });
        await exec('resize2fs', ['--', device], { signal, log });
      } finally {
        // Remount even when the resize failed: the database must find its data dir again.
        // No signal here: an abort must not leave the volume unmounted.
        if (wasMounted) {
          await mount(device, mp, { fsType: fsType as FsType, options: opts.mountOptions, writeFstab: false });
        }
      }
    } catch (err) {
      if (err instanceof GuestError) throw err;
      throw new GuestError(`Error resizing the filesystem with device '${device}'.`, { cause: err });
    }
  }

  async function getFilesystemStats(path: string): Promise<FilesystemStats> {
    const p = validatePath(path, 'path');
    try {
      return filesystemStatsFrom(await statfs(p));
    } catch (err) {
      throw new GuestError(`Filesystem not found (${p})`, { cause: err });
    }
  }

  async function setReadaheadSize(device: string, sectors: number, signal?: AbortSignal): Promise<void> {
    await checkDevice(device);
    if (!Number.isSafeInteger(sectors) || sectors < 0) throw new BadRequestError('Invalid readahead size.');
    try {
      await exec('blockdev', ['--setra', String(sectors), device], { signal, log });
    } catch (err) {
      throw new GuestError(`Error setting readahead size to ${sectors} for device ${device}.`, { cause: err });
    }
  }

  return {
    detectFsType,
    setReadaheadSize,
    isFormatted: async (d, s) => (await detectFsType(d, s)) !== null,
    format,
    ensureFormatted: async (d, o) => {
      if ((await detectFsType(d, o?.signal)) !== null) return false;
      await format(d, o);
      return true;
    },
    mount,
    unmount,
    isMounted,
    mountPoints,
    migrateData,
    resizeFs,
    getFilesystemStats,
  };
}
