/**
 * Loop devices for integration tests: a sparse image file under a temp dir,
 * attached with `losetup --find --show`. Always call detach() in afterAll.
 * Needs root and util-linux (losetup).
 */
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec } from '../../../src/process/exec.ts';

export interface LoopDevice {
  device: string;
  image: string;
  dir: string;
  /** Grows the image file to `bytes` and makes the kernel see the new size (losetup -c). */
  resize(bytes: number): Promise<void>;
  /** Detaches the device and removes the image dir; safe to call twice. */
  detach(): Promise<void>;
}

export async function attachLoop(sizeBytes: number): Promise<LoopDevice> {
  if (process.getuid?.() !== 0) throw new Error('loop device tests need root (losetup)');
  const dir = await mkdtemp(join(tmpdir(), 'loop-'));
  const image = join(dir, 'disk.img');
  await writeFile(image, '');
  await truncate(image, sizeBytes);
  let device: string;
  try {
    device = (await exec('losetup', ['--find', '--show', '--', image])).stdout.trim();
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`losetup failed (install util-linux: apt-get install -y util-linux; needs root and /dev/loop-control): ${String(err)}`);
  }
  let detached = false;
  return {
    device,
    image,
    dir,
    async resize(bytes) {
      await truncate(image, bytes);
      await exec('losetup', ['-c', device]);
    },
    async detach() {
      if (detached) return;
      detached = true;
      // Unmount anything still on the device so detach cannot fail on a busy device.
      const mi = await exec('findmnt', ['-n', '-o', 'TARGET', '-S', device], { okExitCodes: [0, 1] });
      for (const t of mi.stdout.split('\n').map((s) => s.trim()).filter(Boolean).reverse()) {
        await exec('umount', ['--', t], { okExitCodes: [0, 32] });
      }
      await exec('losetup', ['-d', device], { okExitCodes: [0, 1] });
      await rm(dir, { recursive: true, force: true });
    },
  };
}
