/**
 * The agent's side of prepare, around the datastore's own: markers, the
 * `building` heartbeat, the data volume (formatted only when blank, then
 * mounted), then the datastore, then the final status: `failed to spawn` on
 * error, `instance ready` for a cluster member, else the datastore's real
 * status (trove/guestagent/datastore/manager.py prepare, BaseDbStatus).
 * Prepare runs once: a second prepare, or one after an interrupted run, is
 * refused so nothing is initialised twice over live data.
 */
import { OperationNotSupportedError, UnprocessableError } from './errors.ts';
import type { BackupFetcher, Datastore, OpContext, PrepareRequest, RebuildRequest } from './datastore.ts';
import type { PrepareMarkers } from './markers.ts';
import type { StatusReporter } from './heartbeat.ts';
import type { ModuleManager } from './modules.ts';
import { attachReplica } from './replication.ts';

/** Puts the data volume in place: format if it has no filesystem, then mount. */
export interface VolumePreparer {
  prepareVolume(devicePath: string, mountPoint: string, ctx: OpContext): Promise<void>;
}

export interface PrepareServiceOptions {
  datastore: Datastore;
  markers: PrepareMarkers;
  reporter: StatusReporter;
  /** Null when volumes are not managed (local runs, or device_path unset). */
  volumes: VolumePreparer | null;
  /** The datastore section's device_path: what a rebuild mounts (Trove's agent mounts it at start). */
  devicePath?: string | null | undefined;
  /** Applies prepare's `modules` once the instance is ready (null: they are logged as not applied). */
  modules?: ModuleManager | null | undefined;
  /** Size in GiB of the filesystem at a mount point (get_filesystem_stats): a replica's volume must hold its source's data. */
  volumeTotalGb?: ((mountPoint: string) => Promise<number>) | undefined;
}

export class PrepareService {
  readonly #o: PrepareServiceOptions;
  #running = false;

  constructor(o: PrepareServiceOptions) {
    this.#o = o;
  }

  async prepare(req: PrepareRequest, ctx: OpContext, fetcher?: BackupFetcher): Promise<void> {
    const { markers, reporter, datastore } = this.#o;
    if (this.#running || markers.started) {
      const when = markers.startedAt();
      throw new UnprocessableError(
        `Prepare already ran on this instance${when ? ` (started ${new Date(when).toISOString()})` : ''}` +
          `${markers.completed ? '' : ' and did not complete'}; it is not run twice. Rebuild or recreate the instance.`,
      );
    }
    await this.#building('prepare', req.dsVersion, ctx, async () => {
      const mountPoint = req.mountPoint ?? datastore.mountPoint;
      if (req.devicePath && this.#o.volumes) await this.#o.volumes.prepareVolume(req.devicePath, mountPoint, ctx);
      await datastore.lifecycle.prepare({ ...req, mountPoint }, ctx, fetcher);
      // A replica (Trove: prepare with `snapshot`, restored from the source's snapshot backup)
      // attaches to its source before it counts as ready; a failure is a failed prepare.
      if (req.snapshot) {
        if (!datastore.replication) throw new OperationNotSupportedError('attach_replica', datastore.name);
        const config = req.snapshot['config'];
        await attachReplica(datastore.replication, req.snapshot, typeof config === 'string' ? config : null, async () => (this.#o.volumeTotalGb ? this.#o.volumeTotalGb(datastore.mountPoint) : Number.POSITIVE_INFINITY), ctx);
      }
    });
    if (req.clusterConfig) {
      await reporter.report('instance ready', true);
    } else {
      markers.markCompleted();
      await reporter.report(await reporter.probe(), true);
    }
    ctx.log.info('prepare completed');
    // As Trove's agent: modules are applied after the instance is ready; a failure is logged
    // and does not change the instance's state (module-query shows each module's own status).
    if (req.modules?.length) {
      try {
        if (!this.#o.modules) throw new Error('this guest has no module support');
        const results = this.#o.modules.apply(req.modules);
        ctx.log.info({ modules: results.map((r) => ({ name: r['name'], status: r['status'] })) }, 'modules applied (called from prepare)');
      } catch (err) {
        ctx.log.error({ err }, 'an error occurred applying modules');
      }
    }
  }

  /**
   * Trove's rebuild: Nova replaced the guest's image and kept the data
   * volume; this guest's agent never saw a prepare. The volume is mounted
   * (formatted only if blank, as Trove's agent does at start), the datastore
   * takes its data back, and the guest counts as prepared from then on.
   */
  async rebuild(req: Omit<RebuildRequest, 'mountPoint'>, ctx: OpContext): Promise<void> {
    const { markers, reporter, datastore } = this.#o;
    const rebuild = datastore.lifecycle.rebuild;
    if (!rebuild) throw new OperationNotSupportedError('rebuild', datastore.name);
    if (this.#running) throw new UnprocessableError('A prepare or rebuild is running on this instance; try again when it has finished.');
    await this.#building('rebuild', req.dsVersion, ctx, async () => {
      const mountPoint = datastore.mountPoint;
      if (this.#o.devicePath && this.#o.volumes) await this.#o.volumes.prepareVolume(this.#o.devicePath, mountPoint, ctx);
      await rebuild.call(datastore.lifecycle, { ...req, mountPoint }, ctx);
    });
    markers.markCompleted();
    await reporter.report(await reporter.probe(), true);
    ctx.log.info('rebuild completed');
  }

  /** Start marker and `building`, the work, and `failed to spawn` (rethrown) if it fails. */
  async #building(what: string, dsVersion: string | null, ctx: OpContext, work: () => Promise<void>): Promise<void> {
    const { markers, reporter, datastore } = this.#o;
    this.#running = true;
    markers.markStarted();
    try {
      await reporter.report('building', true);
      ctx.log.info({ datastore: datastore.name, ds_version: dsVersion }, `${what} started`);
      await work();
    } catch (err) {
      ctx.log.error({ err }, `${what} failed`);
      await reporter.report('failed to spawn', true);
      throw err;
    } finally {
      this.#running = false;
    }
  }
}
