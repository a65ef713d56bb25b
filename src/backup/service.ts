/**
 * The agent's backup service: create_backup as Trove's guest runs it (an
 * update_backup cast with state BUILDING, the datastore's tool streamed into
 * Swift, started again when Swift broke the upload off (backup_retries),
 * then COMPLETED with checksum, location and size, or FAILED), and
 * the fetcher a datastore uses to restore from Swift during prepare.
 *
 * Which Swift, with which token (swiftFor): with an application credential
 * in [service_credentials], the agent's own Keystone token and the
 * object-store endpoint of its catalog, whatever the caller sent. Otherwise
 * the caller's token, at the storage URL from backup_info, else the
 * context's service catalog, else [DEFAULT] swift_url + the project id, else
 * the catalog Keystone returns for the caller's token scoped to its project
 * at [service_credentials] auth_url (what Trove 18's backup tool does).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BackupFetcher, BackupInfo, BackupLink, Datastore, OpContext } from '../datastore.ts';
import { AbortedError, BadRequestError, ChecksumMismatchError, GuestError, OperationNotSupportedError, SwiftError } from '../errors.ts';
import { redactText, type Logger } from '../log.ts';
import { runBackup, runRestore, parseLocation } from './pipeline.ts';
import { CODEC_SUFFIX, type Codec } from './compress.ts';
import { createSwiftClient, type SwiftClient } from './swift-client.ts';
import { applicationCredentialSession, authenticate, endpointFromCatalog } from './keystone.ts';
import type { KeystoneOptions } from '../config/load.ts';

/** A restore follows at most this many incrementals back to their full backup. */
const MAX_INCREMENTALS = 100;

export interface BackupServiceOptions {
  datastore: Datastore;
  /** conductor.update_backup(backup_id, fields). */
  updateBackup(backupId: string, fields: Record<string, unknown>): Promise<void>;
  /** Used GiB of the data volume, as Trove reports while building. */
  usedGb(): Promise<number>;
  /** backup_swift_container (database_backups). */
  container: string;
  /** backup_segment_max_size in bytes (2 GiB). */
  segmentMaxSize: number;
  /** [DEFAULT] swift_url (the project id is appended), when the caller sends no catalog. */
  swiftUrl: string | null;
  /** [service_credentials]: Keystone for the caller's token, or the agent's application credential. */
  keystone?: KeystoneOptions | undefined;
  datastoreVersion: string | null;
  /** backup_aes_cbc_key: backups are encrypted in OpenSSL's format when set. */
  encryptionKey: string | null;
  /** Codec for new backups; restores read the codec from the object name. */
  compression: Codec;
  /** How often a running backup reports BUILDING with the size so far, ms (default 30 s). */
  progressIntervalMs?: number;
  /**
   * Where a running backup is noted (one small file each, no credentials), so that the next start
   * of an agent killed mid-backup reports it FAILED and removes what it left in Swift. Null: none.
   */
  journalDir?: string | null;
  /** V8's minor GC for the pipelines to pace the buffers streamed through Node (null: none). */
  minorGc?: (() => void) | null;
  /**
   * backup_retries (ours): how many times a backup whose upload Swift broke off (a 5xx, a
   * dropped connection, a segment stored with other bytes) starts again from the beginning,
   * with a new run of the tool. Default 1.
   */
  retries?: number;
  /** Wait before such a new start, ms (doubles each time). Default 5000. */
  retryDelayMs?: number;
}

/**
 * Whether a failed backup may start again: Swift broke off its upload (a segment's bytes are
 * gone once sent, so only a new run of the tool can send them again). Not the tool failing, a
 * refused request (4xx) or an abort: those would fail the same way again.
 */
export function uploadBrokeOff(err: unknown): boolean {
  return (err instanceof SwiftError && err.retryable) || err instanceof ChecksumMismatchError;
}

/** What the journal keeps of a running backup. */
interface Running {
  id: string;
  container: string;
  started: string;
}

export interface CallerContext {
  auth_token?: unknown;
  project_id?: unknown;
  service_catalog?: unknown;
}

export function createBackupService(o: BackupServiceOptions) {
  const region = o.keystone?.regionName ?? null;
  const appCred = o.keystone?.applicationCredential && o.keystone.authUrl ? applicationCredentialSession(o.keystone.authUrl, o.keystone.applicationCredential) : null;

  function swiftFor(request: CallerContext, info: BackupInfo | null, log?: () => Logger | null): SwiftClient {
    // The operator sees Swift's trouble that a new try got past (a token-free path and the reason).
    const retry = { onRetry: log ? (r: object) => log()?.warn(r, 'a Swift request failed; trying it again') : undefined };
    if (appCred) {
      return createSwiftClient({
        ...retry,
        auth: async ({ refresh }) => {
          const t = await appCred.token({ refresh });
          const storageUrl = endpointFromCatalog(t.catalog, { region });
          if (!storageUrl) throw new BadRequestError(`The Keystone catalog of application credential ${o.keystone?.applicationCredential?.id} has no public object-store endpoint${region ? ` (region ${region})` : ''}.`);
          return { storageUrl, token: t.token };
        },
      });
    }
    const token = typeof request.auth_token === 'string' ? request.auth_token : null;
    if (!token) throw new BadRequestError('The request has no auth_token, so Swift cannot be reached on the user\'s behalf.');
    const project = typeof request.project_id === 'string' ? request.project_id : '';
    const url = info?.swiftUrl ?? endpointFromCatalog(request.service_catalog, { region }) ?? (o.swiftUrl ? `${o.swiftUrl.replace(/\/$/, '')}${o.swiftUrl.endsWith('_') ? '' : '/'}${project}` : null);
    if (url) return createSwiftClient({ ...retry, storageUrl: url, token });
    const authUrl = o.keystone?.authUrl;
    if (!authUrl || !project) {
      throw new BadRequestError('No Swift storage URL: neither the backup request, the service catalog, swift_url nor Keystone ([service_credentials] auth_url and the request\'s project) gives one.');
    }
    // Trove 18's backup tool: keystoneauth v3.Token(auth_url, token, project_id), then the catalog's object-store.
    return createSwiftClient({
      ...retry,
      auth: async ({ signal }) => {
        const t = await authenticate(authUrl, { kind: 'token', token, projectId: project }, { signal });
        const storageUrl = endpointFromCatalog(t.catalog, { region });
        if (!storageUrl) throw new BadRequestError(`Keystone's catalog for project ${project} has no public object-store endpoint${region ? ` (region ${region})` : ''}.`);
        return { storageUrl, token: t.token };
      },
    });
  }

  const metaOf = (headers: Record<string, unknown>): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) if (k.startsWith('x-object-meta-') && typeof v === 'string') out[k.slice('x-object-meta-'.length)] = v;
    return out;
  };

  function fetcher(request: CallerContext, info: BackupInfo | null): BackupFetcher {
    // One client for the whole restore (one Keystone lookup); its retries go to the log of the call at hand.
    let log: Logger | null = null;
    const swift = swiftFor(request, info, () => log);
    const metadata = async (location: string, ctx: OpContext): Promise<Record<string, string>> => {
      log = ctx.log;
      const { container, name } = parseLocation(location);
      return metaOf((await swift.head(container, name, { signal: ctx.signal })).headers as Record<string, unknown>);
    };
    return {
      metadata,
      async chain(location, checksum, ctx) {
        const chain: BackupLink[] = [];
        let cur: BackupLink | null = { location, checksum };
        while (cur) {
          if (chain.length > MAX_INCREMENTALS) throw new GuestError(`backup chain too long (over ${MAX_INCREMENTALS} incrementals)`);
          chain.unshift(cur);
          const meta = await metadata(cur.location, ctx);
          cur = meta['parent-location'] ? { location: meta['parent-location'], checksum: meta['parent-checksum'] || null } : null;
        }
        return chain;
      },
      async restoreInto(location, checksum, consumer, ctx: OpContext) {
        log = ctx.log;
        await runRestore({ location, checksum: checksum ?? undefined, swift, consumer, encryptionKey: o.encryptionKey, signal: ctx.signal, log: ctx.log, minorGc: o.minorGc });
      },
    };
  }

  // The backup id is Trove's (a UUID), but it names a file here: hex-encoded, whatever it holds.
  const journalFile = (id: string): string | null => (o.journalDir ? join(o.journalDir, `${Buffer.from(id).toString('hex')}.json`) : null);

  async function create(info: BackupInfo, request: CallerContext, ctx: OpContext): Promise<void> {
    const strategy = o.datastore.backup;
    if (!strategy) throw new OperationNotSupportedError('create_backup', o.datastore.name);
    const type = info.parent ? 'incremental' : 'full';
    const state: Record<string, unknown> = { size: await o.usedGb().catch(() => 0), state: 'BUILDING', backup_type: type };
    await o.updateBackup(info.id, state);
    const journal = journalFile(info.id);
    if (journal) {
      const running: Running = { id: info.id, container: info.swiftContainer ?? o.container, started: new Date().toISOString() };
      mkdirSync(o.journalDir!, { recursive: true, mode: 0o700 });
      writeFileSync(journal, JSON.stringify(running) + '\n', { mode: 0o600 });
    }
    try {
      const log = ctx.log.child({ backup_id: info.id });
      const swift = swiftFor(request, info, () => log);
      let parentMeta: Record<string, string> | null = null;
      if (info.parent) {
        const { container, name } = parseLocation(info.parent.location);
        parentMeta = metaOf((await swift.head(container, name, { signal: ctx.signal })).headers as Record<string, unknown>);
      }
      const retries = o.retries ?? 1;
      for (let attempt = 0; ; attempt++) {
        const plan = await strategy.plan({ backupId: info.id, parent: parentMeta, codec: o.compression }, ctx);
        try {
          const result = await runBackup({
            producer: plan.producer,
            swift,
            container: info.swiftContainer ?? o.container,
            backupId: info.id,
            // The plan names gzip ('xbstream.gz'); another codec swaps the suffix.
            extension: plan.compress ? plan.extension.replace(/\.gz$/, `.${CODEC_SUFFIX[o.compression]}`) : plan.extension,
            compress: plan.compress,
            codec: o.compression,
            encryptionKey: o.encryptionKey,
            segmentMaxSize: o.segmentMaxSize,
            metadata: async () => ({
              datastore: info.datastore ?? o.datastore.name,
              datastore_version: info.datastoreVersion ?? o.datastoreVersion ?? '',
              ...(info.parent ? { 'parent-location': info.parent.location, 'parent-checksum': info.parent.checksum ?? '' } : {}),
              ...(await plan.metadata()),
            }),
            signal: ctx.signal,
            log,
            minorGc: o.minorGc,
            progressIntervalMs: o.progressIntervalMs,
            // `trove backup-show` moves while a long backup runs.
            onProgress: (p) => {
              void o.updateBackup(info.id, { ...state, size: Math.round((p.storedBytes / 1024 ** 3) * 100) / 100 }).catch(() => {});
            },
          });
          Object.assign(state, {
            checksum: result.checksum,
            location: result.location,
            size: Math.round((result.size / 1024 ** 3) * 100) / 100,
            success: true,
            state: 'COMPLETED',
          });
          break;
        } catch (err) {
          // runBackup has deleted what it stored; a new run of the tool sends it all again.
          if (attempt >= retries || !uploadBrokeOff(err) || ctx.signal.aborted) throw err;
          const waitMs = (o.retryDelayMs ?? 5000) * 2 ** attempt;
          log.warn({ err, attempt: attempt + 1, of: retries + 1, wait_ms: waitMs }, 'Swift broke off the backup\'s upload; starting the backup again');
          await sleep(waitMs, undefined, { signal: ctx.signal }).catch(() => {
            throw new AbortedError('backup aborted while waiting to start again', { cause: err });
          });
        } finally {
          await plan.cleanup();
        }
      }
    } catch (err) {
      Object.assign(state, { success: false, state: 'FAILED' });
      throw new GuestError(`Failed to create backup ${info.id}, error: ${redactText(err instanceof Error ? err.message : String(err))}`, { cause: err });
    } finally {
      await o.updateBackup(info.id, state).catch((e: unknown) => ctx.log.error({ err: e }, 'update_backup failed'));
      if (journal) rmSync(journal, { force: true });
    }
  }

  /**
   * Backups a killed agent left running (its journal): conductor learns FAILED, and what they
   * stored in Swift is deleted with the agent's own application credential; without one (the
   * user's token went with the request) the log names what is left. Called once at start.
   */
  async function recoverInterrupted(ctx: OpContext): Promise<string[]> {
    if (!o.journalDir || !existsSync(o.journalDir)) return [];
    const recovered: string[] = [];
    for (const f of readdirSync(o.journalDir).filter((n) => n.endsWith('.json')).sort()) {
      const file = join(o.journalDir, f);
      let running: Running;
      try {
        running = JSON.parse(readFileSync(file, 'utf8')) as Running;
        if (typeof running.id !== 'string' || typeof running.container !== 'string') throw new Error('no id or container');
      } catch (err) {
        ctx.log.warn({ err, file }, 'unreadable note of a running backup: removed');
        rmSync(file, { force: true });
        continue;
      }
      const log = ctx.log.child({ backup_id: running.id });
      log.warn({ started: running.started }, 'a backup was running when the agent stopped without finishing it: reporting it FAILED');
      try {
        await o.updateBackup(running.id, { state: 'FAILED', success: false });
      } catch (err) {
        log.error({ err }, 'update_backup failed; the backup stays noted for the next start');
        continue;
      }
      if (appCred) {
        try {
          const swift = swiftFor({}, null);
          const left = (await swift.list(running.container, { prefix: running.id, signal: ctx.signal }).catch((e: unknown) => {
            if (e instanceof SwiftError && e.details.status === 404) return [] as string[];
            throw e;
          })).filter((n) => n.startsWith(`${running.id}_`) || n.startsWith(`${running.id}.`));
          for (const n of left) await swift.delete(running.container, n, { signal: ctx.signal, ignoreMissing: true });
          log.info({ container: running.container, objects: left.length }, "the interrupted backup's objects were deleted");
        } catch (err) {
          log.error({ err, container: running.container, prefix: running.id }, "could not delete the interrupted backup's objects; they stay in Swift");
        }
      } else {
        log.warn({ container: running.container, prefix: running.id },
          "objects of the interrupted backup may remain in Swift: the agent has no credentials of its own to delete them ([service_credentials] application_credential_id/_secret)");
      }
      rmSync(file, { force: true });
      recovered.push(running.id);
    }
    return recovered;
  }

  /** A Swift client with the caller's credentials (guest logs publish with it too). */
  const client = (request: CallerContext): SwiftClient => swiftFor(request, null);
  return { create, fetcher, client, recoverInterrupted };
}

export type BackupService = ReturnType<typeof createBackupService>;
