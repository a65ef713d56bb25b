/**
 * mount_volume, unmount_volume and resize_fs (trove/guestagent/datastore/manager.py
 * on trove/guestagent/volume.py VolumeDevice), on the agent's volume manager.
 */
import { BadRequestError, OperationNotSupportedError } from '../errors.ts';
import type { MethodSpec } from '../rpc/dispatcher.ts';
import type { VolumeManager } from '../volume/volume-manager.ts';
import type { HandlerDeps } from './deps.ts';
import { optBool, optStr } from './wire.ts';

export function volumeMethods(d: HandlerDeps): Record<string, MethodSpec> {
  const volumes = (method: string): VolumeManager => {
    if (!d.volumes) throw new OperationNotSupportedError(method, d.datastore.name);
    return d.volumes;
  };
  const paths = (a: Record<string, unknown>): { device: string; mountPoint: string } => {
    const device = optStr(a, 'device_path');
    const mountPoint = optStr(a, 'mount_point') ?? d.datastore.mountPoint;
    if (!device) throw new BadRequestError("'device_path' is required");
    return { device, mountPoint };
  };
  return {
    mount_volume: {
      params: [{ name: 'device_path' }, { name: 'mount_point' }, { name: 'write_to_fstab' }],
      handler: async (a, ctx) => {
        const { device, mountPoint } = paths(a);
        await volumes(ctx.method).mount(device, mountPoint, { writeFstab: optBool(a, 'write_to_fstab', false), signal: ctx.signal });
      },
    },
    unmount_volume: {
      params: [{ name: 'device_path' }, { name: 'mount_point' }],
      handler: async (a, ctx) => {
        const mountPoint = optStr(a, 'mount_point') ?? d.datastore.mountPoint;
        await volumes(ctx.method).unmount(mountPoint, { signal: ctx.signal });
      },
    },
    resize_fs: {
      params: [{ name: 'device_path' }, { name: 'mount_point' }, { name: 'online' }],
      handler: async (a, ctx) => {
        const { device, mountPoint } = paths(a);
        await volumes(ctx.method).resizeFs(device, mountPoint, { online: optBool(a, 'online', false), signal: ctx.signal });
      },
    },
  };
}
